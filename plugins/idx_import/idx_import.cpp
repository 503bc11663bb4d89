// Stage "idx_import": turns a pair of IDX files (images and labels, gzip or not,
// e.g. Fashion-MNIST's) into a content-addressed dataset version with arrays
// "x" (the images as they are) and "y" (the labels, u8 [N]). Both files are read
// and checked before anything is written to the registry, so a bad input leaves
// the registry untouched.
#include <kiln/data/dataset.h>
#include <kiln/data/idx.h>
#include <kiln/error.h>
#include <kiln/hash.h>
#include <kiln/log.h>
#include <kiln/plugin.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using kiln::data::Array;

struct InputFile {
  fs::path path;
  Array array;
  std::string sha256;
};

InputFile read_input(kiln::StageContext& context, std::string_view param, std::int64_t step) {
  InputFile input;
  input.path = fs::absolute(context.params().get_path(param));
  context.progress().update(
      {.step = step, .total_steps = 2, .note = "reading " + input.path.filename().string()});
  input.array = kiln::data::read_idx(input.path);
  input.sha256 = kiln::sha256_file(input.path);
  return input;
}

void check_pair(const InputFile& images, const InputFile& labels) {
  const Array& y = labels.array;
  if (y.shape.size() != 1 || y.dtype != kiln::DType::U8)
    throw kiln::DataError(
        fmt::format("{}: labels must be a rank-1 u8 IDX array, got shape [{}] of {}",
                    labels.path.string(), fmt::join(y.shape, ", "), kiln::name_of(y.dtype)));
  if (images.array.rows() != y.rows())
    throw kiln::DataError(fmt::format("{} has {} rows but {} has {}: images and labels must agree",
                                      images.path.string(), images.array.rows(),
                                      labels.path.string(), y.rows()));
}

int distinct_labels(const Array& labels) {
  std::array<bool, 256> seen{};
  for (const std::uint8_t label : labels.bytes) seen[label] = true;
  int count = 0;
  for (const bool present : seen) count += present ? 1 : 0;
  return count;
}

nlohmann::json describe_source(const InputFile& images, const InputFile& labels) {
  return {{"images", {{"path", images.path.string()}, {"sha256", images.sha256}}},
          {"labels", {{"path", labels.path.string()}, {"sha256", labels.sha256}}}};
}

void run(kiln::StageContext& context) {
  InputFile images = read_input(context, "images", 1);
  InputFile labels = read_input(context, "labels", 2);
  check_pair(images, labels);
  const nlohmann::json source = describe_source(images, labels);
  const std::int64_t rows = images.array.rows();
  const std::vector<std::int64_t> x_shape = images.array.shape;
  const int classes = distinct_labels(labels.array);
  images.array.name = "x";
  labels.array.name = "y";

  const std::string name = context.params().get_string("name");
  kiln::data::DatasetStore store(context.registry_root());
  const kiln::data::DatasetVersion version =
      store.put(name, {std::move(images.array), std::move(labels.array)}, source);
  context.emit({.name = "dataset",
                .kind = "dataset",
                .path = version.file,
                .content_id = version.id,
                .meta = {{"id", version.id},
                         {"name", version.name},
                         {"rows", rows},
                         {"x_shape", x_shape},
                         {"classes", classes},
                         {"summary", fmt::format("{} {}: {} rows, {} classes", name,
                                                 version.id.substr(0, 12), rows, classes)}}});
  context.progress().finish();
  kiln::log::info("idx_import: dataset '{}' {} with {} rows of [{}], {} classes -> {}", name,
                  version.id.substr(0, 12), rows, fmt::join(x_shape, ", "), classes,
                  version.file.string());
}

void register_stages(kiln::StageRegistrar& registrar) {
  kiln::StageType type;
  type.name = "idx_import";
  type.summary =
      "Import an IDX images file and an IDX labels file (gzip or not) as a versioned dataset "
      "with arrays x and y";
  type.params
      .required("images", kiln::ParamType::Path,
                "IDX file of the inputs, e.g. train-images-idx3-ubyte.gz")
      .required("labels", kiln::ParamType::Path,
                "IDX file of the labels (rank 1, u8), e.g. train-labels-idx1-ubyte.gz")
      .optional("name", kiln::ParamType::String, "dataset",
                "human name of the dataset version, e.g. fashion-mnist-train");
  type.consumes = {};
  type.produces = {"dataset"};
  type.run = run;
  registrar.add(std::move(type));
}

}  // namespace

KILN_PLUGIN("idx_import", "0.1.0", register_stages)
