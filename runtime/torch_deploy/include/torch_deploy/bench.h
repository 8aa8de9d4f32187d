// Timing a model: latency percentiles and throughput, as `ts-infer --bench` and `make bench` report them.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch_deploy/model.h>

#include <cstdint>
#include <vector>

namespace torch_deploy {

struct Timing {
  std::vector<double> latencies_ms;  // each timed run, in order
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double mean_ms = 0;
  int64_t batch = 1;            // the first input's first dimension
  double throughput_per_s = 0;  // batch items per second, from the mean
  // In the graph the last timed run executed, for a TorchScript model with --optimize onednn (-1 for others): its
  // oneDNN Graph partitions (each runs as one fused sequence of kernels), and the operators on tensors computed from
  // the model's inputs that ran outside them (each alone, through libtorch's interpreter, cutting the fusion around
  // it).
  int64_t fused_partitions = -1;
  int64_t unfused_operators = -1;
};

// Runs the model `warmup` times untimed (the first runs profile and specialise the graph), then `runs` times timed.
Timing bench(const Model& model, const std::vector<at::Tensor>& inputs, int runs, int warmup);

// The value at `fraction` (0.5: the median) of ascending `sorted` values, nearest rank.
double percentile(const std::vector<double>& sorted, double fraction);

}  // namespace torch_deploy
