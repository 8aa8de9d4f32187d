#include "detail.h"

#include <c10/util/Exception.h>

#include <sstream>

namespace torch_deploy::detail {

std::string cause_of(const std::exception& error, CauseLine which) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  std::istringstream lines(c10_error ? c10_error->what_without_backtrace() : error.what());
  std::string line;
  std::string last;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t") != std::string::npos) {
      last = line;
      if (which == CauseLine::first) {
        break;
      }
    }
  }
  if (last.rfind("[enforce fail at ", 0) == 0 && last.find("] . ") != std::string::npos) {
    last = last.substr(last.find("] . ") + 4);
  }
  for (const char* boilerplate : {" This is an internal miniz error", "  (Could this error message be improved?"}) {
    last = last.substr(0, last.find(boilerplate));
  }
  return last.substr(0, last.find_last_not_of(" .") + 1);
}

void for_each_field(
    const std::string& text,
    const std::function<void(const std::string& key, std::istream& values, const std::string& line)>& field) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream values(line);
    std::string key;
    values >> key;
    field(key, values, line);
  }
}

std::optional<c10::ScalarType> scalar_type_named(const std::string& name) {
  static const std::pair<const char*, c10::ScalarType> kNames[] = {
      {"float32", c10::kFloat},  {"float16", c10::kHalf}, {"bfloat16", c10::kBFloat16},
      {"float64", c10::kDouble}, {"int64", c10::kLong},   {"int32", c10::kInt},
      {"int8", c10::kChar},      {"uint8", c10::kByte},   {"bool", c10::kBool},
  };
  for (const auto& [known, type] : kNames) {
    if (name == known) {
      return type;
    }
  }
  return std::nullopt;
}

}  // namespace torch_deploy::detail
