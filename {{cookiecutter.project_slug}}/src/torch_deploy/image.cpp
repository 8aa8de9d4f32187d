// Images: OpenCV decodes the file; everything after decoding is ATen, the kernels torchvision's transforms run in
// Python, so that C++ and Python preprocess identically.

#include <ATen/core/Tensor.h>  // before the _ops headers, which need it
#include <ATen/ops/_upsample_bicubic2d_aa_ops.h>
#include <ATen/ops/_upsample_bilinear2d_aa_ops.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/upsample_nearest2d_ops.h>
#include <torch_deploy/error.h>
#include <torch_deploy/image.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "detail.h"

#if defined(TORCH_DEPLOY_WITH_OPENCV)
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace torch_deploy {

ImageSettings ImageSettings::parse(const std::string& text) {
  ImageSettings settings;
  detail::for_each_field(text, [&](const std::string& key, std::istream& fields, const std::string&) {
    if (key == "resize") {
      fields >> settings.resize;
    } else if (key == "crop") {
      settings.crop.assign(std::istream_iterator<int64_t>(fields), {});
    } else if (key == "mean") {
      settings.mean.assign(std::istream_iterator<double>(fields), {});
    } else if (key == "std") {
      settings.std.assign(std::istream_iterator<double>(fields), {});
    } else if (key == "interpolation") {
      fields >> settings.interpolation;
    } else if (key == "dtype") {
      std::string dtype;
      fields >> dtype;
      const auto type = detail::scalar_type_named(dtype);
      settings.dtype = type && at::isFloatingType(*type) ? *type : at::kFloat;
    }
  });
  const bool channels_fit =
      (settings.mean.size() == 1 || settings.mean.size() == 3) && settings.std.size() == settings.mean.size();
  const bool known = settings.interpolation == "bilinear" || settings.interpolation == "bicubic" ||
                     settings.interpolation == "nearest";
  if (settings.resize <= 0 || settings.crop.size() != 2 || !channels_fit || !known) {
    throw Error("the model's preprocess.txt is malformed; re-export it with make export");
  }
  return settings;
}

bool images_supported() {
#if defined(TORCH_DEPLOY_WITH_OPENCV)
  return true;
#else
  return false;
#endif
}

at::Tensor read_image(const std::string& path) {
#if defined(TORCH_DEPLOY_WITH_OPENCV)
  if (!std::ifstream(path, std::ios::binary)) {
    throw Error(path + ": cannot open the image (missing or unreadable)");
  }
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);  // our one line says it, not a WARN too
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) {
    throw Error(path + ": not an image OpenCV can decode (JPEG, PNG, BMP, TIFF, WebP, ...)");
  }
  const at::Tensor pixels =
      at::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, {static_cast<int64_t>(bgr.step[0]), 3, 1}, at::kByte);
  return pixels.flip({2}).permute({2, 0, 1}).contiguous();  // BGR -> RGB, channels first (a copy: bgr is freed)
#else
  throw Error(path + ": this torch_deploy library was built without OpenCV, which decoding images needs; install " +
              "its development files (Debian/Ubuntu: apt install libopencv-imgcodecs-dev; conda: opencv) and " +
              "rebuild: make build CMAKE_ARGS=-DTORCH_DEPLOY_OPENCV=ON");
#endif
}

at::Tensor preprocess(const at::Tensor& rgb, const ImageSettings& settings) {
  at::Tensor image = rgb;
  if (settings.mean.size() == 1) {  // torchvision's rgb_to_grayscale: weighted sum, truncated back to uint8
    image = image[0].mul(0.2989).add(image[1].mul(0.587)).add(image[2].mul(0.114)).to(at::kByte).unsqueeze(0);
  }
  const int64_t height = image.size(1);
  const int64_t width = image.size(2);
  const int64_t new_short = settings.resize;
  const auto new_long =
      static_cast<int64_t>(static_cast<double>(settings.resize) * static_cast<double>(std::max(height, width)) /
                           static_cast<double>(std::min(height, width)));
  const std::vector<int64_t> size =
      height <= width ? std::vector<int64_t>{new_short, new_long} : std::vector<int64_t>{new_long, new_short};
  if (size[0] != height || size[1] != width) {
    // at::_ops::X::call is what at::X calls; its header is a fraction of at::X's, which doubles a file's build time.
    at::Tensor resized;
    const at::Tensor batch = image.unsqueeze(0).to(at::kFloat);
    const c10::SymIntArrayRef output_size = c10::fromIntArrayRefSlow(size);
    if (settings.interpolation == "bicubic") {
      resized =
          at::_ops::_upsample_bicubic2d_aa::call(batch, output_size, /*align_corners=*/false, {}, {}).clamp(0, 255);
    } else if (settings.interpolation == "nearest") {
      resized = at::_ops::upsample_nearest2d::call(batch, output_size, {}, {});
    } else {
      resized = at::_ops::_upsample_bilinear2d_aa::call(batch, output_size, /*align_corners=*/false, {}, {});
    }
    image = resized.round().to(at::kByte).squeeze(0);
  }
  // Round half to even, as Python's round() in torchvision's center_crop.
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(size[0] - settings.crop[0]) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(size[1] - settings.crop[1]) / 2.0));
  image = image.slice(1, top, top + settings.crop[0]).slice(2, left, left + settings.crop[1]);
  const auto channels = static_cast<int64_t>(settings.mean.size());
  const at::Tensor mean = at::tensor(settings.mean).to(at::kFloat).view({channels, 1, 1});
  const at::Tensor std = at::tensor(settings.std).to(at::kFloat).view({channels, 1, 1});
  return image.to(at::kFloat).div(255).sub(mean).div(std).unsqueeze(0).to(settings.dtype);
}

}  // namespace torch_deploy
