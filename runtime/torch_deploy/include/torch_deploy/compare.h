// Comparing a model's outputs with the expected ones: the parity check of `make verify`.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torch_deploy {

// How far a model's outputs moved from reference outputs computed in another precision (bf16 from fp32): the largest
// absolute difference of the floating-point outputs (a flipped mask says nothing of its size), and for a classifier how
// many of the reference's top-k classes (first output, first row) are still among the top-k.
struct Drift {
  double max_abs_diff = 0;
  int64_t top_k = 0;  // 0: no class scores compared
  int64_t top_k_overlap = 0;

  // "max abs diff 1.044e-02, top-5 overlap 5/5"
  std::string describe() const;
};

// What compare() found. It prints nothing; describe() gives the text of the parity line.
//
// The rule is scale-aware: a floating-point output passes when its max abs diff is within atol + rtol * its
// reference's largest |value| (float32 rounding grows with the magnitude of what is summed, so logits near 4e11 differ
// by 1e5 and are right, while an elementwise rule would fail their small elements); any other output (labels, masks,
// token ids) must be equal.
struct Report {
  bool pass = false;   // every output close, and the same top-k wherever it was compared
  bool close = false;  // every output within its tolerance (above)
  // The same top-k class indices for every (batch, classes) floating output, up to ties: two classes whose expected
  // scores are within the output's tolerance may be swapped (the reference cannot order them).
  bool same_top_k = true;
  bool top_k_ties = false;           // same_top_k only up to such ties
  double max_abs_diff = 0;           // over all outputs
  std::vector<double> output_diffs;  // max abs diff of each output, in order
  // Each output's largest |expected value|; none for one that is empty or not floating-point.
  std::vector<std::optional<double>> scales;
  std::vector<int64_t> sizes;  // each output's number of elements (0: nothing of it compared)
  double atol = 0;
  double rtol = 0;
  int64_t top_k = 0;
  bool first_is_scores = false;  // whether the first output is class scores (the parity line mentions the top-k)
  // When the outputs could not be compared at all: how many there were and which one had another shape.
  size_t output_count = 0;
  size_t expected_count = 0;
  std::ptrdiff_t shape_mismatch = -1;
  std::vector<int64_t> actual_shape;
  std::vector<int64_t> expected_shape;
  // Set by the caller that measured it: the drift from another precision's outputs, and the file they came from.
  std::optional<Drift> drift;
  std::string drift_from;
  // Whether the line gives the relative diff and the note on outputs below atol. The bf16 check turns it off: its
  // tolerance is measured at the outputs' scale, and the fp32 check of the same outputs gives both.
  bool show_scale = true;

  // The largest relative difference over the floating-point outputs (max abs diff / largest |expected|), and the
  // index of its output; -1 when no floating-point output has a nonzero scale.
  std::pair<double, std::ptrdiff_t> relative_diff() const;

  // The parity line: "PASS: max abs diff 4.768e-07 within (atol 1.000e-04, rtol 1.000e-04), top-5 identical to
  // Python", with several outputs "; per output: <name> <diff>, ...", with a drift "; drift from <file>: ...", then
  // (show_scale) "; relative diff 1.234e-07 of the largest |expected| 3.862e+00" and, when a floating-point output's
  // largest |value| is below atol, a note that the check cannot tell that output from zero. Or "FAIL: ..." with the
  // reason.
  // `names` are the outputs' names (TensorFile::names of the expected file).
  std::string describe(const std::vector<std::string>& names) const;
};

// Compares `outputs` with `expected`: the same count and shapes, every output within its tolerance (Report), and for
// every 2-D floating output (class scores) the same top-k class indices up to ties (Report::same_top_k; top_k 0: not
// compared).
Report compare(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& expected, double atol,
               double rtol, int64_t top_k);

// The drift of `outputs` from `reference` (the same count and shapes, else Error).
Drift drift(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& reference, int64_t top_k);

// A classifier's output: a 2-D floating tensor of (batch, classes) scores.
bool is_scores(const at::Tensor& output);

// The indices of the k highest softmax scores of each row, highest first (as the TorchScript tutorial computes them).
at::Tensor top_k_indices(const at::Tensor& scores, int64_t k);

// A number as the parity line shows it: three decimals, scientific ("5.960e-07").
std::string format_number(double value);

}  // namespace torch_deploy
