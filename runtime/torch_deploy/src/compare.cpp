// The parity check: a model's outputs against the expected ones, within tolerances and with the same top-k.

#include <ATen/core/Formatting.h>
#include <torch_deploy/compare.h>
#include <torch_deploy/error.h>

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace torch_deploy {

bool is_scores(const at::Tensor& output) { return output.dim() == 2 && output.is_floating_point(); }

at::Tensor top_k_indices(const at::Tensor& scores, int64_t k) {
  return std::get<1>(scores.softmax(1).topk(std::min(k, scores.size(1)), 1));
}

namespace {

// How `actual`'s top-k classes compare with `wanted`'s, row by row: the same, or the same up to ties: where a place
// names another class, Python's own scores for the two classes are within `tolerance` of each other. The reference
// cannot order classes closer than the tolerance the outputs are checked with (random weights give near-equal scores
// everywhere, and bf16 or a rewritten graph may order them otherwise), so such a swap is no difference.
enum class TopK { same, same_up_to_ties, differs };

TopK compare_top_k(const at::Tensor& actual, const at::Tensor& wanted, int64_t k, double tolerance) {
  const at::Tensor ours = top_k_indices(actual, k);
  const at::Tensor theirs = top_k_indices(wanted, k);
  if (ours.equal(theirs)) {
    return TopK::same;
  }
  const at::Tensor gap = wanted.gather(1, ours).sub(wanted.gather(1, theirs)).abs();
  return gap.le(tolerance).all().item<bool>() ? TopK::same_up_to_ties : TopK::differs;
}

}  // namespace

std::string format_number(double value) {
  std::ostringstream out;
  out << std::setprecision(3) << std::scientific << value;
  return out.str();
}

Report compare(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& expected, double atol,
               double rtol, int64_t top_k) {
  Report report;
  report.atol = atol;
  report.rtol = rtol;
  report.top_k = top_k;
  report.output_count = outputs.size();
  report.expected_count = expected.size();
  if (outputs.size() != expected.size()) {
    return report;
  }
  report.close = true;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const at::Tensor actual = outputs[i].to(at::kDouble);
    const at::Tensor wanted = expected[i].to(at::kDouble);
    if (actual.sizes() != wanted.sizes()) {
      report.close = false;
      report.shape_mismatch = static_cast<std::ptrdiff_t>(i);
      report.actual_shape = actual.sizes().vec();
      report.expected_shape = wanted.sizes().vec();
      return report;
    }
    const at::Tensor diff = actual.sub(wanted).abs();
    const bool empty = diff.numel() == 0;
    const double output_diff = empty ? 0.0 : diff.max().item<double>();
    const bool floating = expected[i].is_floating_point();
    const std::optional<double> scale =
        floating && !empty ? std::optional(wanted.abs().max().item<double>()) : std::nullopt;
    report.output_diffs.push_back(output_diff);
    report.scales.push_back(scale);
    report.sizes.push_back(wanted.numel());
    report.max_abs_diff = std::max(report.max_abs_diff, output_diff);
    // `<=` is false for NaN, so a NaN anywhere fails; an output that is not floating-point must be equal.
    const double tolerance = atol + rtol * scale.value_or(0.0);
    report.close = report.close && (floating ? output_diff <= tolerance : output_diff == 0.0);
    if (top_k > 0 && is_scores(outputs[i])) {
      const TopK order = compare_top_k(actual, wanted, top_k, tolerance);
      report.same_top_k = report.same_top_k && order != TopK::differs;
      report.top_k_ties = report.top_k_ties || order == TopK::same_up_to_ties;
    }
  }
  report.first_is_scores = !outputs.empty() && is_scores(outputs.front());
  report.pass = report.close && report.same_top_k;
  return report;
}

std::pair<double, std::ptrdiff_t> Report::relative_diff() const {
  std::pair<double, std::ptrdiff_t> largest{0.0, -1};
  for (size_t i = 0; i < scales.size(); ++i) {
    const std::optional<double>& scale = scales[i];
    if (scale && *scale > 0 && (largest.second < 0 || output_diffs[i] / *scale > largest.first)) {
      largest = {output_diffs[i] / *scale, static_cast<std::ptrdiff_t>(i)};
    }
  }
  return largest;
}

std::string Report::describe(const std::vector<std::string>& names) const {
  auto name = [&](size_t i) { return i < names.size() ? names[i] : "output_" + std::to_string(i); };
  std::ostringstream out;
  if (output_count != expected_count) {
    out << "FAIL: the model returned " << output_count << " tensors, Python recorded " << expected_count;
    return out.str();
  }
  if (shape_mismatch >= 0) {
    out << "FAIL: output " << name(static_cast<size_t>(shape_mismatch)) << " has shape "
        << c10::IntArrayRef(actual_shape) << ", Python's has " << c10::IntArrayRef(expected_shape);
    return out.str();
  }
  out << (pass ? "PASS" : "FAIL") << ": max abs diff " << format_number(max_abs_diff)
      << (close ? " within " : " exceeds ") << "(atol " << format_number(atol) << ", rtol " << format_number(rtol)
      << ")";
  if (top_k > 0 && first_is_scores) {
    out << ", top-" << top_k
        << (!same_top_k  ? " differs from Python"
            : top_k_ties ? " as Python's up to ties (classes whose scores differ by less than the tolerance swapped)"
                         : " identical to Python");
  }
  const bool several = output_diffs.size() > 1;
  if (several) {
    out << "; per output: ";
    for (size_t i = 0; i < output_diffs.size(); ++i) {
      out << (i ? ", " : "") << name(i) << " " << format_number(output_diffs[i]);
    }
  }
  if (drift) {
    out << "; drift from " << drift_from << ": " << drift->describe();
  }
  if (!show_scale) {
    return out.str();
  }
  const auto [relative, at] = relative_diff();
  if (at >= 0) {
    out << "; relative diff " << format_number(relative) << " of " << (several ? name(at) + "'s " : "the ")
        << "largest |expected| " << format_number(scales[at].value_or(0.0));
  }
  // A reference this small passes on atol alone, whatever the model computes: say so rather than pass in silence.
  for (size_t i = 0; i < scales.size(); ++i) {
    const std::optional<double>& scale = scales[i];
    if (scale && *scale < atol) {
      out << "; note: " << (several ? name(i) + "'s" : "the output's") << " largest |value| is "
          << format_number(*scale) << ", below atol, so this check cannot tell it from zero (verify with trained "
          << "weights, or set a smaller \"atol\" in deploy.json)";
      break;
    }
  }
  std::vector<std::string> empty;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) {
      empty.push_back(name(i));
    }
  }
  if (!empty.empty()) {
    const bool one = empty.size() == 1;
    out << "; note: ";
    for (size_t i = 0; i < empty.size(); ++i) {
      out << (i ? ", " : "") << empty[i];
    }
    out << (one ? " is" : " are") << " empty, so nothing of " << (one ? "it" : "them")
        << " is compared (a detector that found nothing: verify with trained weights and an image with objects in it)";
  }
  return out.str();
}

Drift drift(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& reference, int64_t top_k) {
  if (outputs.size() != reference.size()) {
    throw Error("the drift is measured against " + std::to_string(reference.size()) + " reference outputs, and the " +
                "model returned " + std::to_string(outputs.size()) + "; give the same model's reference outputs");
  }
  Drift result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].sizes() != reference[i].sizes()) {
      throw Error("output " + std::to_string(i) + " and its reference differ in shape; give the same model's " +
                  "reference outputs");
    }
    if (outputs[i].numel() > 0 && outputs[i].is_floating_point()) {
      const double diff = outputs[i].to(at::kDouble).sub(reference[i].to(at::kDouble)).abs().max().item<double>();
      result.max_abs_diff = std::max(result.max_abs_diff, diff);
    }
  }
  if (top_k > 0 && !outputs.empty() && is_scores(outputs.front()) && outputs.front().size(0) > 0) {
    const at::Tensor ours = top_k_indices(outputs.front().to(at::kDouble), top_k)[0];
    const at::Tensor theirs = top_k_indices(reference.front().to(at::kDouble), top_k)[0];
    result.top_k = ours.size(0);
    result.top_k_overlap = ours.unsqueeze(1).eq(theirs.unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return result;
}

std::string Drift::describe() const {
  std::ostringstream out;
  out << "max abs diff " << format_number(max_abs_diff);
  if (top_k > 0) {
    out << ", top-" << top_k << " overlap " << top_k_overlap << "/" << top_k;
  }
  return out.str();
}

}  // namespace torch_deploy
