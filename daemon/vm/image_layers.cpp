#include "daemon/vm/image_layers.hpp"

#include <openssl/evp.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <fstream>
#include <memory>
#include <set>

namespace sandboxd::vm {
namespace json = boost::json;

namespace {

bool plain_word(std::string_view s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.';
    if (!ok) return false;
  }
  return true;
}

bool lowercase_hex(std::string_view s, std::size_t length) {
  if (s.size() != length) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A relative path of plain words: nothing absolute, no "..", no empty part.
bool relative_inside(std::string_view path) {
  if (path.empty() || path.size() > 4096 || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (!plain_word(path.substr(start, slash - start))) return false;
    start = slash + 1;
  }
  return true;
}

const json::value* member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

Expected<ImageLayer, std::string> parse_layer(const json::value& v, const std::filesystem::path& image_dir) {
  if (!v.is_object()) return Unexpected{std::string("expected an object")};
  const auto& o = v.get_object();
  ImageLayer layer;
  const json::value* name = member(o, "name");
  if (!name || !name->is_string() || !plain_word(name->get_string()))
    return Unexpected{std::string("\"name\" must be a word of letters, digits, '-', '_', '.' (1..64)")};
  layer.name = name->get_string();
  auto fail = [&](const std::string& why) { return Unexpected{"layer '" + layer.name + "': " + why}; };
  const json::value* file = member(o, "file");
  if (!file || !file->is_string() || !relative_inside(file->get_string()))
    return fail("\"file\" must be a relative path inside the image directory (no '..', no leading '/')");
  layer.file = image_dir / std::string(file->get_string());
  const json::value* fs = member(o, "fs");
  if (!fs || !fs->is_string() || (fs->get_string() != "squashfs" && fs->get_string() != "erofs"))
    return fail("\"fs\" must be \"squashfs\" or \"erofs\"");
  layer.fs = fs->get_string();
  const json::value* sha = member(o, "sha256");
  if (!sha || !sha->is_string() || !lowercase_hex(sha->get_string(), 64))
    return fail("\"sha256\" must be 64 lowercase hex digits");
  layer.sha256 = sha->get_string();
  const json::value* size = member(o, "size");
  if (!size || !(size->is_uint64() || (size->is_int64() && size->get_int64() > 0)))
    return fail("\"size\" must be a positive integer");
  layer.size = size->is_uint64() ? size->get_uint64() : static_cast<std::uint64_t>(size->get_int64());
  if (layer.size == 0) return fail("\"size\" must be a positive integer");
  return layer;
}

}  // namespace

Expected<std::vector<ImageLayer>, std::string> parse_image_layers(std::string_view manifest_text,
                                                                 const std::filesystem::path& image_dir) {
  if (manifest_text.size() > kMaxManifestBytes) return Unexpected{std::string("manifest.json is larger than 1 MiB")};
  json::parse_options options;
  options.max_depth = 32;
  boost::system::error_code ec;
  json::value v = json::parse(manifest_text, ec, {}, options);
  if (ec) return Unexpected{"manifest.json is not JSON: " + ec.message()};
  if (!v.is_object()) return Unexpected{std::string("manifest.json is not a JSON object")};
  std::vector<ImageLayer> layers;
  const json::value* list = member(v.get_object(), "layers");
  if (!list || list->is_null()) return layers;
  if (!list->is_array()) return Unexpected{std::string("manifest.json: \"layers\" must be an array")};
  if (list->get_array().size() > kMaxImageLayers)
    return Unexpected{"manifest.json: more than " + std::to_string(kMaxImageLayers) + " layers"};
  std::set<std::string> names;
  std::set<std::filesystem::path> files;
  for (std::size_t i = 0; i < list->get_array().size(); ++i) {
    auto layer = parse_layer(list->get_array()[i], image_dir);
    if (!layer) return Unexpected{"manifest.json: layer " + std::to_string(i) + ": " + layer.error()};
    if (!names.insert(layer->name).second)
      return Unexpected{"manifest.json: layer " + std::to_string(i) + ": the name '" + layer->name + "' is used twice"};
    if (!files.insert(layer->file).second)
      return Unexpected{"manifest.json: layer " + std::to_string(i) + ": its file is another layer's too"};
    layers.push_back(std::move(*layer));
  }
  return layers;
}

Expected<void, std::string> check_image_layers(const std::vector<ImageLayer>& layers,
                                               const std::filesystem::path& image_dir) {
  std::error_code ec;
  auto root = std::filesystem::canonical(image_dir, ec);
  if (ec) return Unexpected{image_dir.string() + ": " + ec.message()};
  for (const ImageLayer& layer : layers) {
    auto where = "layer '" + layer.name + "' (" + layer.file.string() + "): ";
    auto real = std::filesystem::canonical(layer.file, ec);
    if (ec) return Unexpected{where + ec.message()};
    auto relative = real.lexically_relative(root);
    if (relative.empty() || *relative.begin() == "..")
      return Unexpected{where + "resolves to " + real.string() + ", outside the image directory"};
    if (!std::filesystem::is_regular_file(real, ec)) return Unexpected{where + "not a regular file"};
    auto size = std::filesystem::file_size(real, ec);
    if (ec) return Unexpected{where + ec.message()};
    if (size != layer.size)
      return Unexpected{where + "is " + std::to_string(size) + " bytes, the manifest says " +
                        std::to_string(layer.size)};
  }
  return {};
}

Expected<std::string, std::string> file_sha256(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Unexpected{std::string("cannot be read")};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return Unexpected{std::string("no sha256")};
  std::array<char, 1 << 16> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) return Unexpected{std::string("read error")};
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

Expected<void, std::string> verify_layer_digests(const std::vector<ImageLayer>& layers) {
  for (const ImageLayer& layer : layers) {
    auto where = "layer '" + layer.name + "' (" + layer.file.string() + "): ";
    auto hex = file_sha256(layer.file);
    if (!hex) return Unexpected{where + hex.error()};
    if (*hex != layer.sha256) return Unexpected{where + "sha256 is " + *hex + ", the manifest says " + layer.sha256};
  }
  return {};
}

}  // namespace sandboxd::vm
