// Images: decoding (JPEG and PNG, as Pillow decodes them) and the preprocessing of torchvision's classification
// transforms, in ATen.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch_deploy {

// How an image becomes the model's input, as export.py recorded it in the model file (preprocess.txt): resize the
// shorter side to `resize` with `interpolation`, center crop to `crop` (height, width), scale to [0, 1], subtract
// `mean` and divide by `std` per channel (one channel: torchvision's grey conversion first), cast to `dtype`.
struct ImageSettings {
  int64_t resize = 0;
  std::vector<int64_t> crop;  // height, width
  std::vector<double> mean;   // read as double and rounded to float by torch, as Python's torch.tensor does
  std::vector<double> std;
  std::string interpolation = "bilinear";  // bilinear, bicubic or nearest
  at::ScalarType dtype = at::kFloat;

  // Parses preprocess.txt ("key value..." lines); throws Error when it cannot be used.
  static ImageSettings parse(const std::string& text);
};

// Whether this library was built with libjpeg and libpng, which read_image() needs (CMake option TORCH_DEPLOY_IMAGES).
bool images_supported();

// A JPEG or PNG file (told by its content) as a (3, height, width) uint8 RGB tensor, the pixels predict.py gets from
// Pillow: the EXIF orientation applied, grey and palette images expanded to three channels, alpha dropped. Throws
// Error for a missing file, another format, a damaged or truncated one, or when built without libjpeg and libpng.
// Other formats: decode them yourself into such a tensor and call preprocess().
at::Tensor read_image(const std::string& path);

// What read_image() would throw for a missing or unreadable file, or one of another format, from the file's first bytes
// and without decoding it: a check of many files before slower work (a truncated file is found by read_image() only).
void check_image(const std::string& path);

// The model's (1, channels, crop height, crop width) input from a (3, height, width) uint8 RGB image: the steps and
// ATen kernels of torchvision's ImageClassification transform, which predict.py runs in Python.
at::Tensor preprocess(const at::Tensor& image, const ImageSettings& settings);

}  // namespace torch_deploy
