// Stage "split": one dataset version in, two content-addressed versions out, the
// train part (kind `dataset`, so that a downstream `train` still finds its single
// dataset input) and the validation part (kind `validation_data`, for
// context.find_input("validation_data")). Both keep every array of the input with its
// dtype and row shape, rows in their original order.
//
// Which rows go to validation is a pure function of the input's content id, the
// seed and the parameters: the same input and parameters give the same two
// versions (same ids, since ids hash the arrays). The input is read once, in blocks
// of whole HDF5 chunks, and both parts are written as it passes (two DatasetWriters),
// so memory stays bounded whatever the data set's size.
#include <kiln/data/dataset.h>
#include <kiln/data/reader.h>
#include <kiln/error.h>
#include <kiln/hash.h>
#include <kiln/log.h>
#include <kiln/nn/rng.h>
#include <kiln/plugin.h>

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace kiln::split {
namespace {

using data::ArrayInfo;
using data::DatasetReader;
using data::DatasetVersion;

constexpr std::uint8_t kValidation = 1;
constexpr std::uint8_t kTrain = 0;

// The parameter checks that need no data, run before any stage does.
void check_params(const Params& params) {
  const double validation = params.get_float("validation");
  if (!(validation > 0))
    params.fail("validation",
                fmt::format("{} is not a row count (>= 1) or a fraction (0 < f < 1)", validation));
  if (validation >= 1 && validation != std::floor(validation))
    params.fail("validation",
                fmt::format("{} is neither a whole row count nor a fraction below 1", validation));
  if (params.get_bool("stratify") && params.get_string("order") == "last")
    params.fail("stratify", "needs order: random (order: last takes the last rows as they are)");
}

// The validation part's size in rows, from a count or a fraction of `rows`.
std::int64_t validation_rows(const Params& params, std::int64_t rows) {
  const double validation = params.get_float("validation");
  const auto count = validation >= 1 ? static_cast<std::int64_t>(validation)
                                     : std::llround(validation * static_cast<double>(rows));
  if (count == 0)
    params.fail("validation", fmt::format("{} of {} rows is 0 rows", validation, rows));
  if (count >= rows)
    params.fail("validation", fmt::format("{} rows leave no training rows: the dataset has {} rows",
                                          count, rows));
  return count;
}

// The RNG key: the seed mixed with the input's content id, so that two datasets
// split with the same seed draw unrelated rows.
std::uint64_t rng_key(const std::string& content_id, std::int64_t seed) {
  const std::string digest = sha256_hex(content_id + ":" + std::to_string(seed));
  return std::stoull(digest.substr(0, 16), nullptr, 16);
}

// One integer label per row from `y`, read in blocks; DataError naming the stage
// and key when the dataset has none.
std::vector<std::int64_t> read_labels(const StageContext& context, const DatasetReader& reader,
                                      const std::string& dataset_id) {
  const auto refuse = [&](const std::string& why) {
    throw DataError(fmt::format("stage '{}': {}.with.stratify: dataset {} {}", context.name(),
                                context.name(), dataset_id.substr(0, 12), why));
  };
  const ArrayInfo* labels = nullptr;
  for (const ArrayInfo& info : reader.arrays())
    if (info.name == "y") labels = &info;
  if (labels == nullptr) refuse("has no label array y");
  if (!data::is_integer(labels->dtype))
    refuse(fmt::format("has {} labels in y; stratifying needs integer classes",
                       name_of(labels->dtype)));
  if (reader.row_bytes("y") != static_cast<std::int64_t>(size_of(labels->dtype)))
    refuse("has more than one label per row in y");
  std::vector<std::int64_t> values;
  values.reserve(static_cast<std::size_t>(labels->shape.front()));
  data::for_each_block(reader, "y",
                       [&](std::int64_t, std::int64_t rows, const std::uint8_t* bytes) {
                         for (std::int64_t i = 0; i < rows; ++i)
                           values.push_back(data::element_as_integer(bytes, labels->dtype, i));
                       });
  return values;
}

// Per-class validation quotas summing to `count`, each within one row of its
// class's share (largest remainders get the leftover rows; ties by label).
std::vector<std::int64_t> class_quotas(const std::vector<std::int64_t>& class_rows,
                                       std::int64_t total, std::int64_t count) {
  std::vector<std::int64_t> quotas(class_rows.size());
  std::vector<std::pair<std::int64_t, std::size_t>> remainders;  // (numerator remainder, class)
  std::int64_t assigned = 0;
  for (std::size_t c = 0; c < class_rows.size(); ++c) {
    // Exact integer shares: count * rows_c / total, floor and remainder (no rounding).
    const __int128 share = static_cast<__int128>(count) * class_rows[c];
    quotas[c] = static_cast<std::int64_t>(share / total);
    remainders.emplace_back(static_cast<std::int64_t>(share % total), c);
    assigned += quotas[c];
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::int64_t i = 0; i < count - assigned; ++i)
    ++quotas[remainders[static_cast<std::size_t>(i)].second];
  return quotas;
}

// Marks the validation rows: kValidation or kTrain per row. Random orders use
// selection sampling (Knuth's Algorithm S) within each class: row i of a class with
// `remaining` rows left, `needed` of them still to take, is taken when a uniform
// draw below `remaining` falls under `needed`, which takes exactly the quota, every
// subset of that size being equally likely. Draw i is Philox (key, Shuffle, i).
std::vector<std::uint8_t> choose_rows(const StageContext& context, const DatasetReader& reader,
                                      const std::string& dataset_id, std::int64_t rows,
                                      std::int64_t count) {
  const Params& params = context.params();
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(rows), kTrain);
  if (params.get_string("order") == "last") {
    std::fill(mask.end() - count, mask.end(), kValidation);
    return mask;
  }
  std::vector<std::int64_t> class_of(static_cast<std::size_t>(rows), 0);
  std::vector<std::int64_t> class_rows = {rows};
  if (params.get_bool("stratify")) {
    const std::vector<std::int64_t> labels = read_labels(context, reader, dataset_id);
    std::map<std::int64_t, std::int64_t> counts;
    for (const std::int64_t label : labels) ++counts[label];
    std::map<std::int64_t, std::int64_t> index;
    class_rows.clear();
    for (const auto& [label, n] : counts) {
      index[label] = static_cast<std::int64_t>(class_rows.size());
      class_rows.push_back(n);
    }
    for (std::size_t i = 0; i < labels.size(); ++i) class_of[i] = index[labels[i]];
  }
  std::vector<std::int64_t> needed = class_quotas(class_rows, rows, count);
  std::vector<std::int64_t> remaining = class_rows;
  const std::uint64_t key = rng_key(dataset_id, params.get_int("seed"));
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto c = static_cast<std::size_t>(class_of[static_cast<std::size_t>(i)]);
    const auto draw = nn::uniform_below(key, nn::RngStream::Shuffle, static_cast<std::uint64_t>(i),
                                        static_cast<std::uint64_t>(remaining[c]));
    if (draw < static_cast<std::uint64_t>(needed[c])) {
      mask[static_cast<std::size_t>(i)] = kValidation;
      --needed[c];
    }
    --remaining[c];
  }
  return mask;
}

// Both parts, every array of the input, as two new dataset versions written side by
// side: the input is read once, in blocks, and each run of consecutive rows of one
// part goes to that part's writer.
struct Parts {
  DatasetVersion validation, train;
};

Parts write_parts(const data::DatasetStore& store, const DatasetReader& reader,
                  const std::vector<std::uint8_t>& mask, std::int64_t validation_rows,
                  const std::string& name, nlohmann::json source, const std::string& parent) {
  source["part"] = "validation";
  data::DatasetWriter validation(store, name + "-validation", source, parent);
  source["part"] = "train";
  data::DatasetWriter train(store, name + "-train", source, parent);
  const auto total_rows = static_cast<std::int64_t>(mask.size());
  for (const ArrayInfo& info : reader.arrays()) {
    const std::int64_t row_bytes = reader.row_bytes(info.name);
    ArrayInfo part = info;
    part.shape.front() = validation_rows;
    validation.begin_array(part);
    part.shape.front() = total_rows - validation_rows;
    train.begin_array(part);
    data::for_each_block(
        reader, info.name, [&](std::int64_t first, std::int64_t rows, const std::uint8_t* bytes) {
          for (std::int64_t r = 0; r < rows;) {
            const std::uint8_t which = mask[static_cast<std::size_t>(first + r)];
            std::int64_t end = r + 1;
            while (end < rows && mask[static_cast<std::size_t>(first + end)] == which) ++end;
            (which == kValidation ? validation : train)
                .write(bytes + r * row_bytes, static_cast<std::size_t>((end - r) * row_bytes));
            r = end;
          }
        });
  }
  return {validation.finish(), train.finish()};
}

nlohmann::json describe(const DatasetVersion& version, const std::string& part) {
  nlohmann::json arrays = nlohmann::json::object();
  for (const ArrayInfo& array : version.arrays)
    arrays[array.name] = {{"dtype", name_of(array.dtype)}, {"shape", array.shape}};
  return {{"id", version.id},
          {"name", version.name},
          {"rows", version.rows()},
          {"arrays", arrays},
          {"parent", version.parent},
          {"summary",
           fmt::format("{} part {}: {} rows", part, version.id.substr(0, 12), version.rows())}};
}

void run(StageContext& context) {
  const Params& params = context.params();
  const Artifact& input = context.input("dataset");
  const DatasetReader reader(input.path);
  const DatasetVersion info = data::read_dataset_info(input.path);
  const std::string dataset_id = input.content_id.empty() ? info.id : input.content_id;
  const std::int64_t rows = info.rows();
  const std::int64_t count = validation_rows(params, rows);
  context.progress().update({.note = fmt::format("choosing {} of {} rows", count, rows)});
  const std::vector<std::uint8_t> mask = choose_rows(context, reader, dataset_id, rows, count);

  nlohmann::json source = {{"format", "split"},
                           {"dataset", dataset_id},
                           {"order", params.get_string("order")},
                           {"seed", params.get_int("seed")},
                           {"stratify", params.get_bool("stratify")},
                           {"validation_rows", count}};
  // The parts keep the input's codes, so they keep the names behind them: train
  // one-hot encodes categorical columns by these (kiln/train/tabular.h).
  for (const char* key : {"feature_columns", "categories"})
    if (info.source.is_object() && info.source.contains(key)) source[key] = info.source[key];
  const data::DatasetStore store(context.registry_root());
  context.progress().update({.note = "writing the two parts"});
  const auto [validation, train] =
      write_parts(store, reader, mask, count, info.name, source, dataset_id);
  context.emit({.name = "train",
                .kind = "dataset",
                .path = train.file,
                .content_id = train.id,
                .meta = describe(train, "train")});
  context.emit({.name = "validation",
                .kind = "validation_data",
                .path = validation.file,
                .content_id = validation.id,
                .meta = describe(validation, "validation")});
  context.progress().finish();
  log::info("{}: {} rows of {} -> train {} ({} rows), validation {} ({} rows)", context.name(),
            rows, dataset_id.substr(0, 12), train.id.substr(0, 12), train.rows(),
            validation.id.substr(0, 12), validation.rows());
}

StageType split_type() {
  StageType type;
  type.name = "split";
  type.summary = "Split one dataset version into a train part (dataset) and a validation part";
  type.params
      .required("validation", ParamType::Float,
                "size of the validation part: a row count (>= 1, e.g. 10000) or a fraction "
                "(0 < f < 1)")
      .choice("order", {"random", "last"},
              "random: rows drawn by the seed; last: the last rows, as they are")
      .optional("seed", ParamType::Int, 0, "random order: the draw (with the input's content id)")
      .optional("stratify", ParamType::Bool, false,
                "random order: keep each class's share of the integer labels in y");
  type.consumes = {"dataset"};
  type.produces = {"dataset", "validation_data"};
  type.check = check_params;
  type.run = run;
  return type;
}

void register_stages(StageRegistrar& registrar) { registrar.add(split_type()); }

}  // namespace
}  // namespace kiln::split

KILN_PLUGIN("split", "0.1.0", kiln::split::register_stages)
