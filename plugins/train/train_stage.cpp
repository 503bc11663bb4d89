// The `train` stage: a model declared in the pipeline (`model:`), trained by the
// engine's Trainer (kiln/train/trainer.h) on a dataset version, with checkpoints in
// the stage's resume directory so an interrupted run continues where it stopped.
// Emits the model as safetensors; metrics go to the run (train/*). Given a
// `validation` input (the `split` stage's), it scores the model on it after every
// epoch (val/accuracy, val/loss at step = epoch).
#include <kiln/cpu_threads.h>
#include <kiln/device.h>
#include <kiln/dist/process_group.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/nn/model.h>
#include <kiln/plugin.h>
#include <kiln/train/objectives.h>
#include <kiln/train/predict.h>
#include <kiln/train/tabular.h>
#include <kiln/train/trainer.h>

#include <fmt/format.h>

#include <chrono>

namespace {

using kiln::ParamType;
using Json = nlohmann::json;

// Rows per forward pass when scoring the validation split: no gradients are kept,
// so larger batches than training's cost little memory and fewer calls.
constexpr std::int64_t kValidationBatch = 1024;

// The quickstart's MLP, used when a pipeline names no model.
Json default_model() {
  return {{"layers", Json::array({"flatten",
                                  {{"linear", {{"out", 256}}}},
                                  "relu",
                                  {{"linear", {{"out", 128}}}},
                                  "relu",
                                  {{"linear", {{"out", "classes"}}}}})}};
}

// Fills in what the data decides: the input shape (rows of /x; 2-D rows become
// single-channel images [1, H, W]) and every `out: classes`.
Json resolve_model(Json spec, const kiln::Shape& sample_shape, std::int64_t classes) {
  if (!spec.contains("input")) {
    kiln::Shape input = sample_shape;
    if (input.size() == 2) input.insert(input.begin(), 1);
    spec["input"] = input;
  }
  std::function<void(Json&)> replace = [&](Json& node) {
    if (node.is_object()) {
      for (auto& [key, value] : node.items()) {
        if (key == "out" && value == "classes")
          value = classes;
        else
          replace(value);
      }
    } else if (node.is_array()) {
      for (auto& item : node) replace(item);
    }
  };
  replace(spec);
  return spec;
}

kiln::Shape shape_of(const Json& input) { return input.get<kiln::Shape>(); }

kiln::train::TrainerConfig trainer_config(const kiln::Params& p) {
  kiln::train::TrainerConfig c;
  c.loss = p.get_string("loss");
  c.label_smoothing = p.get_float("label_smoothing");
  c.epochs = p.get_int("epochs");
  c.accumulate = p.get_int("accumulate");
  c.optimizer = {p.get_string("optimizer"),  p.get_float("momentum"), p.get_bool("nesterov"),
                 p.get_float("beta1"),       p.get_float("beta2"),    1e-8,
                 p.get_float("weight_decay")};
  c.schedule.kind = p.get_string("schedule");
  c.schedule.lr = p.get_float("lr");
  c.schedule.warmup_steps = p.get_int("warmup_steps");
  c.schedule.step_size = p.get_int("step_size");
  c.schedule.gamma = p.get_float("gamma");
  c.schedule.min_lr = p.get_float("min_lr");
  c.schedule.pct_start = p.get_float("pct_start");
  c.clip_norm = p.get_float("clip_norm");
  c.seed = static_cast<std::uint64_t>(p.get_int("seed"));
  c.log_every = p.get_int("log_every");
  c.checkpoint_every = p.get_int("checkpoint_every");
  c.cuda_graph = p.get_bool("cuda_graph");
  c.precision =
      p.get_string("precision") == "bf16" ? kiln::nn::Precision::BF16 : kiln::nn::Precision::F32;
  return c;
}

// `auto`: the first GPU, else the CPU. In a data-parallel job each rank takes
// the GPU of its local rank (`auto` or `cuda`; an explicit `cuda:N` is taken as
// written), unless the node shows it one GPU only (Slurm's per-task binding).
kiln::Device pick_device(const std::string& requested, int local_rank) {
  const kiln::DeviceReport report = kiln::probe_devices();
  if (requested == "cpu") return kiln::Device::cpu();
  const int visible = static_cast<int>(report.devices.size());
  const int own = visible == 1 ? 0 : local_rank;
  if (requested == "auto") {
    if (report.devices.empty()) {
      kiln::log::info("train: device auto -> cpu ({})", report.why_none);
      return kiln::Device::cpu();
    }
    if (own >= visible)
      throw kiln::ConfigError(
          fmt::format("device auto: local rank {} needs GPU {}, and this node has {}", local_rank,
                      own, visible));
    kiln::log::info("train: device auto -> cuda:{} ({})", own,
                    report.devices[static_cast<std::size_t>(own)].name);
    return kiln::Device::cuda(own);
  }
  kiln::Device device = kiln::Device::parse(requested);
  if (report.devices.empty())
    throw kiln::ConfigError(
        fmt::format("device {}: no CUDA device is usable here ({})", requested, report.why_none));
  if (device.is_cuda() && requested.find(':') == std::string::npos)
    device = kiln::Device::cuda(own);
  if (device.index >= visible)
    throw kiln::ConfigError(fmt::format("device {}: this machine has {} CUDA device(s)", requested,
                                        report.devices.size()));
  return device;
}

// The model after `epoch` on the validation split (a `split` stage's second output):
// val/accuracy and val/loss at step = epoch, the objective a sweep reads per epoch.
// `batches` is opened at the first epoch and kept, so the split is read once.
void score_validation(kiln::StageContext& context, const kiln::Artifact& validation,
                      const Json& preprocess, std::int64_t epoch, kiln::nn::Model& model,
                      std::unique_ptr<kiln::train::BatchSource>& batches) {
  const auto start = std::chrono::steady_clock::now();
  if (batches == nullptr)
    batches = kiln::train::evaluation_batches(model, preprocess, validation.path, kValidationBatch);
  const kiln::train::Scores scores = kiln::train::score_classifier(model, *batches);
  context.run().log_metric("val/accuracy", scores.accuracy, epoch);
  context.run().log_metric("val/loss", scores.loss, epoch);
  kiln::log::info("train: epoch {} validation accuracy {:.4f}, loss {:.4f} ({} rows, {:.2f} s)",
                  epoch, scores.accuracy, scores.loss, scores.rows,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void run_train(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  const int threads = kiln::set_cpu_threads(static_cast<int>(params.get_int("threads")));
  kiln::train::TrainerConfig config = trainer_config(params);
  config.device = pick_device(params.get_string("device"), context.placement().local_rank);
  const kiln::Artifact& dataset = context.input("dataset");

  // Peek at the data's shape and classes, then reopen it with the model's input shape.
  kiln::train::BatchOptions data_options;
  data_options.batch_size = params.get_int("batch_size");
  data_options.seed = config.seed;
  const kiln::train::LossType& loss = kiln::train::loss_type(config.loss);
  data_options.targets = loss.classifies ? "labels" : "values";
  data_options.device = config.device;
  data_options.memory_budget_bytes = static_cast<std::size_t>(params.get_int("memory_mb")) << 20;
  // Tabular impute/scale/one-hot is fitted here, on the training data, once; the
  // fitted numbers then go with every batch, the validation scores and the weights.
  Json preprocess = params.get("preprocess");
  const kiln::data::DatasetVersion dataset_info = kiln::data::read_dataset_info(dataset.path);
  if (kiln::train::is_tabular(preprocess) ||
      !kiln::data::categories_of(dataset_info.source).empty()) {
    preprocess = kiln::train::fit_tabular(preprocess, dataset_info);
    if (context.placement().rank == 0)
      kiln::write_file_atomic(context.run().artifact_dir() / "preprocess.json",
                              preprocess.dump(2) + "\n");
    kiln::log::info("train: preprocess fitted on {} rows: impute {}, scale {}, {} one-hot columns",
                    preprocess["fitted"]["rows"].get<std::int64_t>(),
                    preprocess["impute"].get<std::string>(), preprocess["scale"].get<std::string>(),
                    preprocess["fitted"].value("categorical", Json::array()).size());
  }
  data_options.preprocess = preprocess;
  // Data parallel: this rank's slice of every global batch of batch_size rows.
  const kiln::Placement& placement = context.placement();
  kiln::dist::ProcessGroup* group = context.process_group();
  data_options.rank = placement.rank;
  data_options.world_size = group != nullptr ? group->size() : 1;
  config.bucket_bytes = static_cast<std::size_t>(params.get_float("bucket_mb") * (1 << 20));
  if (group != nullptr && params.get_float("collective_timeout_s") > 0)
    group->set_timeout(std::chrono::milliseconds(
        static_cast<std::int64_t>(params.get_float("collective_timeout_s") * 1e3)));
  auto batches = kiln::train::dataset_batches(dataset.path, data_options);
  const Json model_param = params.get("model");
  config.model = resolve_model(model_param.empty() ? default_model() : model_param,
                               batches->sample_shape(), batches->classes());
  data_options.sample_shape = shape_of(config.model.at("input"));
  batches = kiln::train::dataset_batches(dataset.path, data_options);

  const kiln::Artifact* validation = context.find_input("validation_data");
  if (validation != nullptr && !loss.classifies)
    throw kiln::ConfigError(
        fmt::format("stage '{}': a validation split is scored for "
                    "classifiers only (loss: cross_entropy, not {})",
                    context.name(), config.loss));
  std::unique_ptr<kiln::train::BatchSource> validation_batches;
  kiln::train::Trainer trainer(config, *batches,
                               {.run = &context.run(),
                                .progress = &context.progress(),
                                .stop_requested = [&context] { return context.stop_requested(); },
                                .checkpoint_dir = context.resume_dir(),
                                .group = group,
                                .checkpoint_writer = placement.rank == 0,
                                .on_epoch_end =
                                    [&](std::int64_t epoch, kiln::nn::Model& model) {
                                      if (validation != nullptr && placement.rank == 0)
                                        score_validation(context, *validation, preprocess, epoch,
                                                         model, validation_batches);
                                    }});
  if (group != nullptr)
    kiln::log::info(
        "train: rank {} of {} ({}), global batch {}, gradient buckets of {} MB, "
        "collective timeout {:.0f} s",
        group->rank(), group->size(), group->backend(), data_options.batch_size,
        params.get_float("bucket_mb"), group->timeout().count() / 1e3);
  kiln::log::info(
      "train: {} rows, model {} parameters, {} epochs, batch {} x {}, {} on {}, {} thread{}{}",
      batches->rows(), trainer.model().parameter_count(), config.epochs, data_options.batch_size,
      config.accumulate, config.optimizer.kind, config.device.str(), threads,
      threads == 1 ? "" : "s",
      kiln::wait_policy_reason().empty()
          ? ""
          : fmt::format(" waiting passively ({})", kiln::wait_policy_reason()));
  // What `kiln reproduce` needs to run it again the same way (a threads of 0 means
  // this machine's cores).
  context.run().set_tag("kiln.threads." + context.name(), std::to_string(threads));
  kiln::log::debug("model:\n{}", trainer.model().summary());
  const kiln::train::TrainResult result = trainer.run();
  if (result.graph_steps > 0)
    kiln::log::info("train: {} of {} steps replayed a CUDA graph", result.graph_steps,
                    result.steps - std::max<std::int64_t>(result.resumed_at, 0));

  const std::string run_id = context.run().run_id();
  trainer.model().save(context.work_dir() / "model.safetensors",
                       {{"kiln.dataset", dataset.content_id},
                        {"kiln.run_id", run_id},
                        {"kiln.preprocess", preprocess.dump()}});
  context.emit(
      {.name = "model",
       .kind = "model",
       .path = "model.safetensors",
       .meta = {{"architecture", trainer.model().spec()},
                {"parameters", trainer.model().parameter_count()},
                {"dataset_id", dataset.content_id},
                {"train_run_id", run_id},
                {"final_loss", result.last_loss},
                {"steps", result.steps},
                {"summary", fmt::format("loss {:.4f} after {} epochs, {} steps{}", result.last_loss,
                                        config.epochs, result.steps,
                                        result.resumed_at >= 0
                                            ? fmt::format(" (resumed at {})", result.resumed_at)
                                            : "")}}});
}

// With its input shape given, a model is checked in full before anything runs;
// without it, the shape comes from the data and the model is checked at run time.
void check_model(const kiln::Params& params) {
  const Json& spec = params.get("model");
  if (spec.empty() || !spec.contains("input")) return;
  try {
    kiln::nn::Model::build(resolve_model(spec, {}, 10), 0);
  } catch (const kiln::ConfigError& e) {
    params.fail("model", e.what());
  }
}

void check_train(const kiln::Params& params) {
  for (const char* name : {"epochs", "batch_size", "log_every", "accumulate"})
    if (params.get_int(name) < 1) params.fail(name, "must be at least 1");
  for (const char* name : {"momentum", "weight_decay", "clip_norm", "min_lr"})
    if (params.get_float(name) < 0) params.fail(name, "must be >= 0");
  if (params.get_float("lr") <= 0) params.fail("lr", "must be > 0");
  if (params.get_bool("nesterov") &&
      (!kiln::train::optimizer_type(params.get_string("optimizer")).momentum ||
       params.get_float("momentum") <= 0))
    params.fail("nesterov", "needs optimizer: sgd and a momentum > 0");
  const double smoothing = params.get_float("label_smoothing");
  if (smoothing < 0 || smoothing >= 1) params.fail("label_smoothing", "must lie in [0, 1)");
  if (params.get_int("threads") < 0) params.fail("threads", "must be >= 0 (0: all cores)");
  if (params.get_int("checkpoint_every") < 0) params.fail("checkpoint_every", "must be >= 0");
  if (params.get_int("memory_mb") < 1) params.fail("memory_mb", "must be at least 1");
  if (params.get_float("collective_timeout_s") < 0)
    params.fail("collective_timeout_s", "must be >= 0 (0: KILN_COLLECTIVE_TIMEOUT_S or 300 s)");
  if (params.get_float("bucket_mb") <= 0) params.fail("bucket_mb", "must be > 0");
  const std::string device = params.get_string("device");
  if (device != "auto") {
    try {
      kiln::Device::parse(device);
    } catch (const kiln::ConfigError& e) {
      params.fail("device", e.what());
    }
  }
  check_model(params);
}

kiln::ParamSchema schema() {
  return kiln::ParamSchema()
      .optional("model", ParamType::Object, Json::object(),
                "layers (and input shape); default: MLP 256-128 over the flattened input")
      .choice("loss", kiln::train::loss_names(), "loss function")
      .optional("label_smoothing", ParamType::Float, 0.0, "cross-entropy label smoothing")
      .optional("epochs", ParamType::Int, 10, "passes over the data")
      .optional("batch_size", ParamType::Int, 128, "samples per micro-batch")
      .optional("accumulate", ParamType::Int, 1, "micro-batches per optimizer step")
      .choice("optimizer", kiln::train::optimizer_names(), "update rule")
      .optional("lr", ParamType::Float, 1e-3, "learning rate (the peak, with a schedule)")
      .optional("momentum", ParamType::Float, 0.9, "SGD momentum")
      .optional("nesterov", ParamType::Bool, false, "SGD Nesterov momentum")
      .optional("beta1", ParamType::Float, 0.9, "AdamW first-moment decay")
      .optional("beta2", ParamType::Float, 0.999, "AdamW second-moment decay")
      .optional("weight_decay", ParamType::Float, 0.0, "decoupled (AdamW) or L2 (SGD) weight decay")
      .choice("schedule", {"constant", "cosine", "step", "onecycle"}, "learning-rate schedule")
      .optional("warmup_steps", ParamType::Int, 0, "linear warmup over the first steps")
      .optional("step_size", ParamType::Int, 1000, "step schedule: steps between decays")
      .optional("gamma", ParamType::Float, 0.1, "step schedule: decay factor")
      .optional("min_lr", ParamType::Float, 0.0, "cosine schedule: final learning rate")
      .optional("pct_start", ParamType::Float, 0.3, "onecycle: share of steps rising to lr")
      .optional("clip_norm", ParamType::Float, 0.0, "clip gradients to this global norm; 0: off")
      .optional("seed", ParamType::Int, 0, "seed of initialisation, shuffling and dropout")
      .optional("preprocess", ParamType::Object, Json::object(),
                "u8 images: normalisation and augmentation (mean, std, crop_padding, flip, "
                "erase, ...); f32 features: impute (mean, median, constant with fill_value) "
                "and scale (standard, minmax), fitted on the training data")
      .optional("memory_mb", ParamType::Int, 256, "the data loader's memory budget")
      .optional("device", ParamType::String, "auto", "auto, cpu, cuda or cuda:<index>")
      .choice("precision", {"f32", "bf16"},
              "matrix products: float32, or bf16 inputs with float32 accumulation (CUDA; on the "
              "CPU with AVX512-BF16 or AMX-BF16, else float32 with a warning; without AMX it "
              "measured slower than float32, and says so)")
      .optional("threads", ParamType::Int, 0, "CPU threads; 0: KILN_NUM_THREADS or all cores")
      .optional("log_every", ParamType::Int, 50, "optimizer steps between metric lines")
      .optional("checkpoint_every", ParamType::Int, 500,
                "optimizer steps between checkpoints (also at every epoch end); 0: epoch ends only")
      .optional("cuda_graph", ParamType::Bool, true,
                "on a GPU, one process: replay the training step as a captured CUDA graph")
      .optional("bucket_mb", ParamType::Float, 25.0,
                "data parallel: gradient bucket size all-reduced during backward")
      .optional("collective_timeout_s", ParamType::Float, 0.0,
                "data parallel: watchdog timeout of each collective; 0: KILN_COLLECTIVE_TIMEOUT_S "
                "or 300 s");
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add({.name = "train",
                 .summary = "Train a model declared in the pipeline (layers from linear to conv2d) "
                            "with SGD or AdamW; checkpoints and resumes",
                 .params = schema(),
                 .consumes = {"dataset", "validation_data"},
                 .produces = {"model"},
                 .metrics = {"train/loss", "train/accuracy", "train/lr", "train/samples_per_s",
                             "train/step_ms", "train/data_wait_ms", "train/epoch",
                             "train/grad_norm", "val/accuracy", "val/loss"},
                 .check = check_train,
                 .run = run_train,
                 .all_ranks = true});
}

}  // namespace

KILN_PLUGIN("train", "0.3.0", register_stages)
