// Images: libjpeg and libpng decode the file to the pixels Pillow's Image.open(path).convert("RGB") gives predict.py
// (both use libjpeg-turbo's defaults for JPEG; PNG's conversions are Pillow's, written out below). Everything after
// decoding is ATen, the kernels torchvision's transforms run in Python, so that C++ and Python preprocess identically.
// These two C libraries, and zlib, are all a deployment needs to ship for images (about 1 MB).

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

#if defined(TORCH_DEPLOY_WITH_IMAGES)
#include <jerror.h>  // the message codes (JWRN_JPEG_EOF)
#include <jpeglib.h>
#include <png.h>

#include <cctype>
#include <csetjmp>
#include <cstdio>  // before jpeglib.h, which needs FILE and size_t
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string_view>
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

#if defined(TORCH_DEPLOY_WITH_IMAGES)
namespace {

using namespace std::string_view_literals;

// What a decoder hands over: the samples as its library delivers them (1 to 4 channels of 8 bits, or of 16 bits
// big-endian, row after row) in malloc'ed memory, and what Pillow makes of them. Plain data: the decoders leave
// libjpeg and libpng through longjmp on errors, which must not jump over a C++ destructor.
struct Raw {
  unsigned char* samples = nullptr;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  int64_t sample_bytes = 1;
  bool cmyk = false;    // a CMYK or YCCK JPEG, converted to RGB as Pillow converts CMYK
  bool grey16 = false;  // a 16-bit grey PNG: Pillow's mode I;16, which convert("RGB") clips to 255
  int orientation = 0;  // EXIF's: 2 to 8 flip or rotate the image as stored
  char error[JMSG_LENGTH_MAX] = {};
};

// The orientation tag (274) of an EXIF block's first directory, as Pillow reads it (which also accepts the block
// behind one or two "Exif\0\0" prefixes); 0 when there is none.
int exif_orientation(std::string_view exif) {
  for (int prefix = 0; prefix < 2 && exif.substr(0, 6) == "Exif\0\0"sv; ++prefix) {
    exif.remove_prefix(6);
  }
  if (exif.size() < 8 || (exif.substr(0, 2) != "II" && exif.substr(0, 2) != "MM")) {
    return 0;
  }
  const bool little_endian = exif[0] == 'I';
  const auto read = [&](size_t at, size_t bytes) {
    uint32_t value = 0;
    for (size_t i = 0; i < bytes; ++i) {
      const auto byte = static_cast<unsigned char>(exif[at + (little_endian ? i : bytes - 1 - i)]);
      value |= static_cast<uint32_t>(byte) << (8 * i);
    }
    return value;
  };
  const size_t directory = read(4, 4);
  if (directory + 2 > exif.size()) {
    return 0;
  }
  const size_t end = std::min<size_t>(exif.size(), directory + 2 + 12 * size_t{read(directory, 2)});
  int orientation = 0;  // the last of the tags, as Pillow keeps it
  for (size_t entry = directory + 2; entry + 12 <= end; entry += 12) {
    const uint32_t type = read(entry + 2, 2);
    if (read(entry, 2) == 274 && read(entry + 4, 4) == 1 && (type == 3 || type == 4)) {  // one SHORT or LONG
      orientation = static_cast<int>(read(entry + 8, type == 3 ? 2 : 4));
    }
  }
  return orientation;
}

// The orientation Pillow's ImageOps.exif_transpose() applies: EXIF's, else the first tiff:Orientation="N" or
// <tiff:Orientation>N of the XMP metadata.
int orientation(std::string_view exif, std::string_view xmp) {
  if (const int tagged = exif_orientation(exif); tagged != 0) {
    return tagged;
  }
  constexpr std::string_view key = "tiff:Orientation";
  for (size_t at = xmp.find(key); at != std::string_view::npos; at = xmp.find(key, at + 1)) {
    const std::string_view rest = xmp.substr(at + key.size(), 3);
    const size_t digit = rest.substr(0, 2) == "=\"" ? 2 : rest.substr(0, 1) == ">" ? 1 : 0;
    if (digit > 0 && rest.size() > digit && rest[digit] >= '0' && rest[digit] <= '9') {
      return rest[digit] - '0';
    }
  }
  return 0;
}

// libjpeg's state for one decode, owned by decode_jpeg()'s caller: what a function changes between its setjmp and
// the longjmp must not be its own local variable (that would be indeterminate after the jump).
struct JpegDecoder {
  jpeg_decompress_struct info;
  jpeg_error_mgr errors;
  std::jmp_buf failed;
  char* message;
};

// libjpeg's error_exit, which must not return: the message goes to Raw::error (libjpeg prints nothing) and
// decode_jpeg() resumes at its setjmp.
[[noreturn]] void jpeg_failed(j_common_ptr info) {
  auto* decoder = static_cast<JpegDecoder*>(info->client_data);
  (*info->err->format_message)(info, decoder->message);
  std::longjmp(decoder->failed, 1);
}

// libjpeg's warnings are about data it decodes all the same, as Pillow's libjpeg does, silently. Except running out
// of data before the last row, where libjpeg would make up grey rows and Pillow refuses the file: an error here too.
void jpeg_warned(j_common_ptr info, int level) {
  const jpeg_decompress_struct& image = static_cast<JpegDecoder*>(info->client_data)->info;
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF &&
      (image.output_height == 0 || image.output_scanline < image.output_height)) {
    jpeg_failed(info);
  }
}

// A JPEG as Pillow decodes it: with libjpeg's defaults (ISLOW DCT, fancy upsampling), to RGB, which also expands grey
// as convert("RGB") does; CMYK and YCCK files to CMYK, converted in to_rgb(). The APP1 markers hold EXIF and XMP.
bool decode_jpeg(JpegDecoder* decoder, const unsigned char* data, size_t size, Raw* raw) {
  jpeg_decompress_struct* info = &decoder->info;
  info->err = jpeg_std_error(&decoder->errors);
  decoder->errors.error_exit = jpeg_failed;
  decoder->errors.emit_message = jpeg_warned;
  info->client_data = decoder;
  decoder->message = raw->error;
  if (setjmp(decoder->failed) != 0) {  // an error: jpeg_failed() jumped back here
    jpeg_destroy_decompress(info);
    std::free(raw->samples);
    raw->samples = nullptr;
    return false;
  }
  jpeg_create_decompress(info);
  jpeg_mem_src(info, data, size);
  jpeg_save_markers(info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(info, TRUE);
  raw->cmyk = info->jpeg_color_space == JCS_CMYK || info->jpeg_color_space == JCS_YCCK;
  info->out_color_space = raw->cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(info);
  raw->height = info->output_height;
  raw->width = info->output_width;
  raw->channels = info->output_components;
  const size_t stride = size_t{info->output_width} * static_cast<size_t>(info->output_components);
  raw->samples = static_cast<unsigned char*>(std::malloc(stride * info->output_height));
  if (raw->samples == nullptr) {
    std::snprintf(raw->error, sizeof raw->error, "not enough memory for the image");
    std::longjmp(decoder->failed, 1);
  }
  while (info->output_scanline < info->output_height) {
    JSAMPROW row = raw->samples + stride * info->output_scanline;
    jpeg_read_scanlines(info, &row, 1);
  }
  std::string_view exif;  // Pillow's: the first EXIF marker, the last XMP one
  std::string_view xmp;
  for (jpeg_saved_marker_ptr marker = info->marker_list; marker != nullptr; marker = marker->next) {
    const std::string_view text(reinterpret_cast<const char*>(marker->data), marker->data_length);
    if (exif.empty() && text.substr(0, 6) == "Exif\0\0"sv) {
      exif = text;
    } else if (text.substr(0, 29) == "http://ns.adobe.com/xap/1.0/\0"sv) {
      xmp = text.substr(29);
    }
  }
  raw->orientation = orientation(exif, xmp);
  jpeg_finish_decompress(info);
  jpeg_destroy_decompress(info);
  return true;
}

// libpng's source (the file in memory) and where its error message goes.
struct PngInput {
  const unsigned char* data;
  size_t size;
  size_t offset;
  char* message;
};

// libpng's error function, which must not return: the message goes to Raw::error and decode_png() resumes at its
// setjmp. Warnings are about data libpng decodes all the same, as Pillow does, silently.
[[noreturn]] void png_failed(png_structp png, png_const_charp message) {
  std::snprintf(static_cast<PngInput*>(png_get_error_ptr(png))->message, JMSG_LENGTH_MAX, "%s", message);
  png_longjmp(png, 1);
}
void png_warned(png_structp /*png*/, png_const_charp /*message*/) {}

void png_read_input(png_structp png, png_bytep out, size_t length) {
  auto* input = static_cast<PngInput*>(png_get_io_ptr(png));
  if (length > input->size - input->offset) {
    png_error(png, "the file ends before the image does");
  }
  std::memcpy(out, input->data + input->offset, length);
  input->offset += length;
}

// The EXIF block of ImageMagick's PNG text "Raw profile type exif": "\nexif\n<length>\n", then the block in hex over
// several lines, which Pillow reads with bytes.fromhex(). Decoded in place (libpng's copy of the text is not needed
// again), up to the first character that is neither a hex digit nor white space.
std::string_view decode_hex_profile(char* text) {
  for (int line = 0; line < 3 && text != nullptr; ++line) {
    text = std::strchr(text, '\n');
    text = text != nullptr ? text + 1 : nullptr;
  }
  if (text == nullptr) {
    return {};
  }
  const auto value = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  char* const block = text;
  size_t size = 0;
  for (int high = -1; *text != '\0'; ++text) {
    const int nibble = value(*text);
    if (nibble < 0 && std::isspace(static_cast<unsigned char>(*text)) == 0) {
      break;
    }
    if (nibble >= 0 && high < 0) {
      high = nibble;
    } else if (nibble >= 0) {
      block[size++] = static_cast<char>(high * 16 + nibble);
      high = -1;
    }
  }
  return {block, size};
}

// The orientation of a PNG as Pillow finds it: EXIF from the eXIf chunk, else from the hex text "Raw profile type
// exif" (ImageMagick's); XMP from the XML:com.adobe.xmp text. Reads libpng's text, and decodes the hex in place.
int png_orientation(png_structp png, png_infop info) {
  std::string_view exif;
  std::string_view xmp;
  png_bytep exif_data = nullptr;
  png_uint_32 exif_size = 0;
  if (png_get_eXIf_1(png, info, &exif_size, &exif_data) != 0) {
    exif = {reinterpret_cast<const char*>(exif_data), exif_size};
  }
  png_textp texts = nullptr;
  const int count = png_get_text(png, info, &texts, nullptr);
  for (int i = 0; i < count; ++i) {
    const std::string_view key = texts[i].key;
    if (key == "XML:com.adobe.xmp") {
      xmp = texts[i].text;
    } else if (key == "Raw profile type exif" && exif.empty()) {
      exif = decode_hex_profile(texts[i].text);
    }
  }
  return orientation(exif, xmp);
}

// A PNG as Pillow decodes it: palettes and 1, 2 and 4-bit grey expanded to 8 bits (a palette's transparency becomes
// a fourth channel, dropped as convert("RGB") drops alpha), 16 bits kept for to_rgb(), interlaced images assembled.
// Gamma and colour profiles are ignored, as Pillow ignores them.
bool decode_png(const unsigned char* data, size_t size, Raw* raw) {
  PngInput input{data, size, 0, raw->error};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &input, png_failed, png_warned);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(raw->error, sizeof raw->error, "not enough memory for libpng");
    return false;
  }
  if (setjmp(png_jmpbuf(png)) != 0) {  // an error: png_failed() jumped back here
    png_destroy_read_struct(&png, &info, nullptr);
    std::free(raw->samples);
    raw->samples = nullptr;
    return false;
  }
  png_set_read_fn(png, &input, png_read_input);
  png_read_info(png, info);
  const int type = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
  } else if (type == PNG_COLOR_TYPE_GRAY && depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  const size_t stride = png_get_rowbytes(png, info);
  raw->height = height;
  raw->width = png_get_image_width(png, info);
  raw->channels = png_get_channels(png, info);
  raw->sample_bytes = png_get_bit_depth(png, info) / 8;
  raw->grey16 = type == PNG_COLOR_TYPE_GRAY && depth == 16;
  raw->samples = static_cast<unsigned char*>(std::malloc(stride * height));
  if (raw->samples == nullptr) {
    png_error(png, "not enough memory for the image");
  }
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 row = 0; row < height; ++row) {
      png_read_row(png, raw->samples + stride * row, nullptr);
    }
  }
  // The chunks after the pixels may hold the EXIF. Pillow reads what it finds of them and accepts a file that ends
  // there early; so does this: a failure from here on comes back to this second setjmp, and the image is kept.
  if (setjmp(png_jmpbuf(png)) == 0) {
    png_read_end(png, info);
  }
  raw->orientation = png_orientation(png, info);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// Pillow's convert("RGB") of the decoded samples, as a (height, width, 3) uint8 tensor.
at::Tensor to_rgb(const at::Tensor& samples, const Raw& raw) {
  at::Tensor pixels = samples;
  if (raw.sample_bytes == 2) {
    const at::Tensor pairs = samples.view({raw.height, raw.width, raw.channels, 2});  // big-endian
    // Pillow keeps the high byte, but reads 16-bit grey as numbers (mode I;16) and clips them to 255.
    pixels = raw.grey16 ? pairs.select(3, 0).to(at::kInt).mul(256).add(pairs.select(3, 1)).clamp_max(255).to(at::kByte)
                        : pairs.select(3, 0);
  }
  if (raw.cmyk) {
    // Pillow reads CMYK JPEGs inverted, as Adobe writes them, and converts in integers: with its C and K,
    // R = (255 - K) - (C * (255 - K) + 128) * 257 / 65536 (MULDIV255), which is this in the stored values c and k.
    const at::Tensor stored = pixels.to(at::kInt);
    const at::Tensor k = stored.narrow(2, 3, 1);
    const at::Tensor product = stored.narrow(2, 0, 3).neg().add(255).mul(k).add(128);
    return k.sub(product.bitwise_right_shift(8).add(product).bitwise_right_shift(8)).to(at::kByte);
  }
  // Grey (and grey with alpha) repeated in the three channels; alpha dropped, not composited.
  return raw.channels < 3 ? pixels.narrow(2, 0, 1).expand({raw.height, raw.width, 3}) : pixels.narrow(2, 0, 3);
}

// Pillow's ImageOps.exif_transpose() of a (height, width, 3) image, for EXIF orientations 2 to 8.
at::Tensor orient(const at::Tensor& image, int orientation) {
  switch (orientation) {
    case 2:
      return image.flip({1});  // mirrored left to right
    case 3:
      return image.flip({0, 1});  // turned 180 degrees
    case 4:
      return image.flip({0});  // mirrored top to bottom
    case 5:
      return image.transpose(0, 1);  // mirrored along the diagonal from the top left
    case 6:
      return image.transpose(0, 1).flip({1});  // turned 90 degrees clockwise
    case 7:
      return image.transpose(0, 1).flip({0, 1});  // mirrored along the other diagonal
    case 8:
      return image.transpose(0, 1).flip({0});  // turned 90 degrees counterclockwise
    default:
      return image;
  }
}

// What a file that is neither JPEG nor PNG is, by its first bytes, for the message that refuses it.
std::string other_format(std::string_view bytes) {
  const auto starts = [&](size_t at, std::string_view magic) {
    return bytes.size() >= at + magic.size() && bytes.substr(at, magic.size()) == magic;
  };
  if (starts(0, "BM")) {
    return "a BMP image";
  }
  if (starts(0, "GIF8")) {
    return "a GIF image";
  }
  if (starts(0, "RIFF") && starts(8, "WEBP")) {
    return "a WebP image";
  }
  if (starts(0, "II*\0"sv) || starts(0, "MM\0*"sv)) {
    return "a TIFF image";
  }
  if (starts(4, "ftypheic") || starts(4, "ftypheix") || starts(4, "ftypmif1") || starts(4, "ftypavif")) {
    return "a HEIF or AVIF image";
  }
  return "not a JPEG or PNG file (told by its content, not its name)";
}

// The file's format by its first bytes (a JPEG starts with an SOI marker, a PNG with its signature, whatever the
// name says): "JPEG" or "PNG"; else throws Error naming what it is and what to do instead.
const char* format_of(const std::string& path, std::string_view bytes) {
  if (bytes.substr(0, 3) == "\xFF\xD8\xFF") {
    return "JPEG";
  }
  if (bytes.substr(0, 8) == "\x89PNG\r\n\x1A\n") {
    return "PNG";
  }
  throw Error(path + ": " + other_format(bytes) + "; --image reads JPEG and PNG: convert the image to one of " +
              "them, or decode it in your own program and pass torch_deploy::preprocess(pixels, " +
              "*model.image_settings()) to Model::classify(input, k)");
}

// The file's bytes: all of them, or the first `count`.
std::string contents_of(const std::string& path, std::streamsize count = -1) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error(path + ": cannot open the image (missing or unreadable)");
  }
  if (count >= 0) {
    std::string head(static_cast<size_t>(count), '\0');
    file.read(head.data(), count);
    head.resize(static_cast<size_t>(file.gcount()));
    return head;
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

}  // namespace
#endif

namespace {
// Without libjpeg and libpng, what read_image() and check_image() throw.
[[maybe_unused]] Error built_without_decoders(const std::string& path) {
  return Error(path + ": this torch_deploy library was built without libjpeg and libpng, which decoding images " +
               "needs; install their development files (Debian/Ubuntu: apt install libjpeg-dev libpng-dev; conda: " +
               "libjpeg-turbo libpng) and rebuild: make build CMAKE_ARGS=-DTORCH_DEPLOY_IMAGES=ON");
}
}  // namespace

bool images_supported() {
#if defined(TORCH_DEPLOY_WITH_IMAGES)
  return true;
#else
  return false;
#endif
}

void check_image(const std::string& path) {
#if defined(TORCH_DEPLOY_WITH_IMAGES)
  format_of(path, contents_of(path, 16));  // 16 bytes: enough for every signature other_format() knows
#else
  throw built_without_decoders(path);
#endif
}

at::Tensor read_image(const std::string& path) {
#if defined(TORCH_DEPLOY_WITH_IMAGES)
  const std::string bytes = contents_of(path);
  const char* format = format_of(path, bytes);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  Raw raw;
  bool decoded = false;
  if (format == std::string_view("JPEG")) {
    JpegDecoder decoder{};
    decoded = decode_jpeg(&decoder, data, bytes.size(), &raw);
  } else {
    decoded = decode_png(data, bytes.size(), &raw);
  }
  if (!decoded) {
    throw Error(path + ": cannot decode this " + format + " file (damaged or truncated): " + raw.error);
  }
  const at::Tensor samples = at::from_blob(
      raw.samples, {raw.height, raw.width, raw.channels * raw.sample_bytes}, [](void* data) { std::free(data); },
      at::kByte);
  return orient(to_rgb(samples, raw), raw.orientation).permute({2, 0, 1}).contiguous();
#else
  throw built_without_decoders(path);
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
