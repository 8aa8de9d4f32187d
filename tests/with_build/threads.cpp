// threads MODEL INPUT EXPECTED THREADS RUNS [DEVICE]: one torch_deploy::Model on DEVICE (the project's by default)
// shared by THREADS threads that all start at once and each run it RUNS times on the reference input, comparing every
// output with Python's (on that device). Prints one line and exits 0 only when every run passed, as
// include/torch_deploy/model.h promises.

#include <torch_deploy/torch_deploy.h>

#include <atomic>
#include <exception>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char* argv[]) {
  if (argc != 6 && argc != 7) {
    std::cerr << "usage: threads MODEL INPUT EXPECTED THREADS RUNS [DEVICE]\n";
    return 2;
  }
  torch_deploy::ModelOptions options;
  if (argc == 7) {
    options.device = argv[6];
  }
  const torch_deploy::Model model(argv[1], options);
  const torch_deploy::TensorFile input = torch_deploy::load_tensors(argv[2]);
  const torch_deploy::TensorFile expected = torch_deploy::load_tensors(argv[3]);
  const int threads = std::stoi(argv[4]);
  const int runs = std::stoi(argv[5]);

  std::atomic<int> waiting{threads};
  std::atomic<int> passed{0};
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      --waiting;
      while (waiting.load() > 0) {  // start together: the first runs (profiling, fusion) overlap too
        std::this_thread::yield();
      }
      for (int r = 0; r < runs; ++r) {
        try {
          const torch_deploy::Report report =
              torch_deploy::compare(model.run(input.tensors), expected.tensors, expected.number("atol", 1e-4),
                                    expected.number("rtol", 1e-4), model.top_k());
          if (report.pass) {
            ++passed;
          } else {
            const std::lock_guard<std::mutex> lock(mutex);
            failures.push_back(report.describe(expected.names));
          }
        } catch (const std::exception& error) {
          const std::lock_guard<std::mutex> lock(mutex);
          failures.push_back(error.what());
        }
      }
    });
  }
  for (std::thread& thread : pool) {
    thread.join();
  }
  std::cout << "threads: " << threads << " x " << runs << " runs on " << model.device() << ": " << passed << " passed, "
            << failures.size() << " failed" << (failures.empty() ? "" : " (first: " + failures.front() + ")") << "\n";
  return failures.empty() && passed == threads * runs ? 0 : 1;
}
