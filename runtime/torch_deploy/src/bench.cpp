// Timing: warm-up runs, then timed runs of Model::run, as percentiles and throughput.

#include <torch/cuda.h>
#include <torch_deploy/bench.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <tuple>

#include "script.h"

namespace torch_deploy {

double percentile(const std::vector<double>& sorted, double fraction) {
  const auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Timing bench(const Model& model, const std::vector<at::Tensor>& inputs, int runs, int warmup) {
  for (int i = 0; i < warmup; ++i) {
    model.run(inputs);
  }
  Timing timing;
  timing.latencies_ms.reserve(static_cast<size_t>(std::max(runs, 0)));
  // A GPU computes after run() returns when the outputs stay there: each run is timed to the GPU's end of it.
  const auto finish = [&model] {
    if (!model.device().is_cpu()) {
      torch::cuda::synchronize(model.device().has_index() ? model.device().index() : -1);
    }
  };
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    model.run(inputs);
    finish();
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    timing.latencies_ms.push_back(elapsed.count());
  }
  if (timing.latencies_ms.empty()) {
    return timing;
  }
  if (model.format() == Format::torchscript && model.optimization() == Optimization::onednn) {
    std::tie(timing.fused_partitions, timing.unfused_operators) = detail::fusion_of_last_run();
  }
  std::vector<double> sorted = timing.latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  timing.p50_ms = percentile(sorted, 0.5);
  timing.p90_ms = percentile(sorted, 0.9);
  timing.p99_ms = percentile(sorted, 0.99);
  timing.mean_ms = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
  timing.batch = !inputs.empty() && inputs.front().dim() > 0 ? inputs.front().size(0) : 1;
  timing.throughput_per_s = 1000.0 * static_cast<double>(timing.batch) / timing.mean_ms;
  return timing;
}

}  // namespace torch_deploy
