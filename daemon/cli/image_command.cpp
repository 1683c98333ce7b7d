#include "daemon/cli/image_command.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "daemon/cli/run_command.hpp"
#include "daemon/service/auth_token.hpp"
#include "daemon/vm/guest_image.hpp"
#include "daemon/vm/image_store.hpp"

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

std::uintmax_t size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

std::string megabytes(std::uintmax_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

}  // namespace

int image_list_command(const ImageListOptions& options) {
  auto roots = vm::default_image_roots();
  // Names in root order: the first root holding a name is the one booted.
  std::set<std::string> names;
  for (const auto& root : roots) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec))
      if (entry.is_directory(ec) && std::filesystem::exists(entry.path() / "manifest.json", ec))
        names.insert(entry.path().filename().string());
  }
  json::array listed;
  for (const auto& name : names) {
    json::object item{{"name", name}};
    auto image = vm::find_guest_image(name, roots);
    if (!image) {
      item["problem"] = image.error();
    } else {
      item["directory"] = image->kernel.parent_path().string();
      item["kind"] = image->layers.empty() ? "initramfs" : "layered";
      std::uintmax_t total = size_or_zero(image->kernel) + size_or_zero(image->initramfs);
      json::array layers;
      for (const auto& layer : image->layers) {
        layers.push_back(json::object{{"name", layer.name}, {"fs", layer.fs}, {"size", layer.size}});
        total += layer.size;
      }
      item["layers"] = std::move(layers);
      item["size"] = total;
    }
    listed.push_back(std::move(item));
  }
  if (options.json) {
    std::cout << json::serialize(listed) << "\n";
  } else {
    std::printf("%-16s %-10s %-24s %10s  %s\n", "NAME", "KIND", "LAYERS", "SIZE", "DIRECTORY");
    for (const auto& v : listed) {
      const auto& item = v.as_object();
      std::string name(item.at("name").as_string());
      if (item.contains("problem")) {
        std::printf("%-16s %-10s %s\n", name.c_str(), "damaged", std::string(item.at("problem").as_string()).c_str());
        continue;
      }
      std::string layers;
      for (const auto& layer : item.at("layers").as_array())
        layers += (layers.empty() ? "" : "+") + std::string(layer.as_object().at("name").as_string());
      std::printf("%-16s %-10s %-24s %10s  %s\n", name.c_str(), std::string(item.at("kind").as_string()).c_str(),
                  layers.empty() ? "-" : layers.c_str(), megabytes(item.at("size").to_number<std::uintmax_t>()).c_str(),
                  std::string(item.at("directory").as_string()).c_str());
    }
  }
  if (listed.empty()) {
    std::cerr << "sandboxd-host: no guest images found; build them with 'meson compile -C build' or set "
                 "SANDBOXD_IMAGES\n";
    return kSandboxFailure;
  }
  return 0;
}

int image_remove_command(const ImageRemoveOptions& options) {
  std::filesystem::path root = options.image_store;
  if (root.empty()) root = service::default_image_store();
  if (root.empty()) {
    std::cerr << "sandboxd-host: no image store: give --image-store\n";
    return kSandboxFailure;
  }
  vm::ImageStore store(root);
  int status = 0;
  for (const auto& name : options.names) {
    auto removed = store.remove(name, std::nullopt);
    if (removed && *removed) {
      std::cout << name << "\n";
      continue;
    }
    status = kSandboxFailure;
    if (!removed) {
      std::cerr << "sandboxd-host: " << name << ": " << removed.error() << "\n";
    } else if (vm::find_guest_image(name, vm::default_image_roots())) {
      std::cerr << "sandboxd-host: " << name << ": not a checkpoint image in " << root.string()
                << " (built images belong to the build that made them)\n";
    } else {
      std::cerr << "sandboxd-host: " << name << ": no such image in " << root.string() << "\n";
    }
  }
  return status;
}

}  // namespace sandboxd::cli
