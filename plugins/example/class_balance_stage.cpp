// An example stage plugin: `class_balance` reads a dataset version's labels,
// logs each class's share of the rows to the run, writes a small JSON report, and
// fails the pipeline when the rarest class falls below a minimum share.
//
// Everything a plugin needs comes from <kiln/...> headers: the stage declares its
// parameters (checked before any stage runs), reads its inputs through the
// context, writes files into its work directory and emits them as outputs.
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/plugin.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace {

void run_class_balance(kiln::StageContext& context) {
  const kiln::Artifact& dataset = context.input("dataset");
  const std::string labels_name = context.params().get_string("labels");
  const kiln::data::Array labels = kiln::data::read_array(dataset.path, labels_name);
  if (labels.dtype != kiln::DType::U8 || labels.shape.size() != 1)
    throw kiln::DataError(
        fmt::format("{}: /{} must be one u8 label per row", dataset.path.string(), labels_name));

  std::map<int, std::int64_t> counts;
  for (const std::uint8_t label : labels.bytes) ++counts[label];
  const double rows = static_cast<double>(labels.rows());
  nlohmann::json shares = nlohmann::json::object();
  double rarest = 1.0;
  for (const auto& [label, count] : counts) {
    const double share = static_cast<double>(count) / rows;
    shares[std::to_string(label)] = share;
    rarest = std::min(rarest, share);
    context.run().log_metric(fmt::format("class_balance/share_{}", label), share, 0);
  }

  const nlohmann::json report = {{"dataset_id", dataset.content_id},
                                 {"rows", labels.rows()},
                                 {"classes", counts.size()},
                                 {"shares", shares},
                                 {"rarest_share", rarest}};
  kiln::write_file_atomic(context.work_dir() / "class_balance.json", report.dump(2) + "\n");
  kiln::log::info("class_balance: {} classes over {} rows, rarest share {:.4f}", counts.size(),
                  labels.rows(), rarest);

  const double minimum = context.params().get_float("min_share");
  if (rarest < minimum)
    throw kiln::GateError(
        fmt::format("rarest class has {:.4f} of the rows, below min_share {}", rarest, minimum));
  context.emit({.name = "report",
                .kind = "report",
                .path = "class_balance.json",
                .meta = {{"rarest_share", rarest},
                         {"summary",
                          fmt::format("{} classes, rarest share {:.4f}", counts.size(), rarest)}}});
}

void check_class_balance(const kiln::Params& params) {
  const double minimum = params.get_float("min_share");
  if (minimum < 0 || minimum > 1) params.fail("min_share", "must lie in [0, 1]");
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add({.name = "class_balance",
                 .summary = "Share of each class in a dataset version, with a minimum",
                 .params = kiln::ParamSchema()
                               .optional("labels", kiln::ParamType::String, "y",
                                         "name of the label array in the dataset")
                               .optional("min_share", kiln::ParamType::Float, 0.0,
                                         "fail when the rarest class has a smaller share"),
                 .consumes = {"dataset"},
                 .produces = {"report"},
                 .check = check_class_balance,
                 .run = run_class_balance});
}

}  // namespace

KILN_PLUGIN("class_balance", "1.0.0", register_stages)
