// Toy stage types for the engine's tests. They do real, tiny work so that the
// runner's caching, commit and failure handling are exercised for real:
//   toy_source     reads a file (Path param), emits its line count as a "table"
//   toy_scale      multiplies the upstream count, writes it to a file, emits "table"
//   toy_sink       logs metrics (the count, whether a stop is requested) to the run
//   toy_fail       throws the error kind named by its `kind` param
//   toy_all_types  declares one parameter of every type and emits them as facts
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/plugin.h>

#include <fstream>
#include <string>

namespace {

using kiln::ParamType;

void run_source(kiln::StageContext& context) {
  const std::string text = kiln::read_file(context.params().get_path("file"));
  const auto lines = static_cast<std::int64_t>(std::count(text.begin(), text.end(), '\n'));
  context.emit({.name = "table",
                .kind = "table",
                .meta = {{"count", lines}, {"summary", "lines " + std::to_string(lines)}}});
}

void run_scale(kiln::StageContext& context) {
  const auto& input = context.input("table");
  const double value = input.meta.at("count").get<double>() * context.params().get_float("factor");
  std::ofstream(context.work_dir() / "value.txt") << value << "\n";
  context.emit({.name = "table", .kind = "table", .path = "value.txt", .meta = {{"count", value}}});
}

void run_sink(kiln::StageContext& context) {
  const auto& input = context.input("table");
  context.run().log_metric("toy/count", input.meta.at("count").get<double>(), 0);
  // What the stage sees of a stop request (RunHooks::stop_requested in the runner tests).
  context.run().log_metric("toy/stop_requested", context.stop_requested() ? 1.0 : 0.0, 0);
  context.emit({.name = "done", .kind = "marker", .meta = {{"count", input.meta.at("count")}}});
}

void run_fail(kiln::StageContext& context) {
  const std::string kind = context.params().get_string("kind");
  if (kind == "data") throw kiln::DataError("toy data problem");
  if (kind == "gate") throw kiln::GateError("toy gate refused");
  if (kind == "interrupt") throw kiln::InterruptedError("toy interrupted");
  if (kind == "std") throw std::runtime_error("toy std exception");
  std::ofstream(context.resume_dir() / "checkpoint") << "partial\n";
  throw kiln::StageError("toy stage failure");
}

void run_all_types(kiln::StageContext& context) {
  context.emit({.name = "values", .kind = "values", .meta = context.params().values()});
}

void check_scale(const kiln::Params& params) {
  if (params.get_float("factor") <= 0) params.fail("factor", "must be > 0");
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add({.name = "toy_source",
                 .summary = "Counts the lines of a file",
                 .params = kiln::ParamSchema().required("file", ParamType::Path, "input file"),
                 .produces = {"table"},
                 .run = run_source});
  registrar.add(
      {.name = "toy_scale",
       .summary = "Multiplies the upstream count",
       .params = kiln::ParamSchema().optional("factor", ParamType::Float, 2.0, "multiplier"),
       .consumes = {"table"},
       .produces = {"table"},
       .check = check_scale,
       .run = run_scale});
  registrar.add({.name = "toy_sink",
                 .summary = "Logs the upstream count to the run",
                 .consumes = {"table"},
                 .produces = {"marker"},
                 .run = run_sink});
  registrar.add({.name = "toy_fail",
                 .summary = "Fails with the error kind asked for",
                 .params = kiln::ParamSchema().choice(
                     "kind", {"stage", "data", "gate", "interrupt", "std"}, "error to raise"),
                 .run = run_fail});
  registrar.add(
      {.name = "toy_all_types",
       .summary = "One parameter of every type",
       .params = kiln::ParamSchema()
                     .optional("flag", ParamType::Bool, false, "a bool")
                     .optional("count", ParamType::Int, 3, "an int")
                     .optional("rate", ParamType::Float, 0.5, "a float")
                     .optional("label", ParamType::String, "x", "a string")
                     .choice("mode", {"fast", "exact"}, "a choice")
                     .optional("sizes", ParamType::IntList, nlohmann::json::array({1, 2}), "ints")
                     .optional("weights", ParamType::FloatList, nlohmann::json::array(), "floats")
                     .optional("names", ParamType::StringList, nlohmann::json::array(), "strings")
                     .optional("extra", ParamType::Object, nlohmann::json::object(), "anything")
                     .required("needed", ParamType::Int, "a required int"),
       .produces = {"values"},
       .run = run_all_types});
}

}  // namespace

KILN_PLUGIN("toy", "1.0.0", register_stages)
