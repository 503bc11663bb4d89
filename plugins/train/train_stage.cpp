// The `train` stage: an MLP classifier on the CPU (OpenBLAS GEMMs), mini-batch
// SGD with momentum or AdamW, shuffled per epoch from the seed. Logs train/loss,
// train/accuracy, train/lr, train/samples_per_s, train/step_ms and
// train/data_wait_ms to the run; emits the model as safetensors.
#include <kiln/cpu_threads.h>
#include <kiln/data/classification.h>
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/nn/mlp.h>
#include <kiln/nn/optimizer.h>
#include <kiln/nn/rng.h>
#include <kiln/plugin.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>

namespace {

using kiln::ParamType;
using Clock = std::chrono::steady_clock;

struct Settings {
  std::vector<std::int64_t> hidden;
  std::int64_t epochs, batch_size, log_every, seed;
  double label_smoothing, lr;
  bool cosine;
};

// Learning rate before step `step` (0-based) of `total`: constant, or cosine decay
// from lr to 0 over the run (Loshchilov & Hutter, SGDR, without restarts).
double scheduled_lr(const Settings& settings, std::int64_t step, std::int64_t total) {
  if (!settings.cosine) return settings.lr;
  const double progress = static_cast<double>(step) / static_cast<double>(total);
  return 0.5 * settings.lr * (1.0 + std::cos(3.14159265358979323846 * progress));
}

std::unique_ptr<kiln::nn::Optimizer> make_optimizer(const kiln::Params& params) {
  if (params.get_string("optimizer") == "sgd")
    return kiln::nn::make_sgd({.lr = params.get_float("lr"),
                               .momentum = params.get_float("momentum"),
                               .nesterov = params.get_bool("nesterov"),
                               .weight_decay = params.get_float("weight_decay")});
  return kiln::nn::make_adamw({.lr = params.get_float("lr"),
                               .beta1 = params.get_float("beta1"),
                               .beta2 = params.get_float("beta2"),
                               .eps = 1e-8,
                               .weight_decay = params.get_float("weight_decay")});
}

// Running sums between two log lines.
struct Window {
  double loss = 0, step_seconds = 0, wait_seconds = 0;
  std::int64_t steps = 0, samples = 0, correct = 0;
};

std::int64_t count_correct(const std::vector<float>& logits, const std::int32_t* labels,
                           std::int64_t batch, std::int64_t classes) {
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < batch; ++i) {
    const float* row = logits.data() + i * classes;
    const auto best = std::max_element(row, row + classes) - row;
    correct += best == labels[i];
  }
  return correct;
}

class Trainer {
 public:
  Trainer(kiln::StageContext& context, const kiln::data::ClassificationData& data,
          const Settings& settings)
      : context_(context),
        data_(data),
        settings_(settings),
        model_({data.features, settings.hidden, data.classes},
               static_cast<std::uint64_t>(settings.seed)),
        optimizer_(make_optimizer(context.params())),
        steps_per_epoch_((data.rows + settings.batch_size - 1) / settings.batch_size) {}

  const kiln::nn::Mlp& model() const { return model_; }
  double last_loss() const { return last_loss_; }

  void run() {
    for (std::int64_t epoch = 1; epoch <= settings_.epochs; ++epoch) run_epoch(epoch);
  }

 private:
  void run_epoch(std::int64_t epoch) {
    const auto order = kiln::nn::permutation(data_.rows, static_cast<std::uint64_t>(settings_.seed),
                                             static_cast<std::uint64_t>(epoch - 1));
    for (std::int64_t start = 0; start < data_.rows; start += settings_.batch_size) {
      if (context_.stop_requested())
        throw kiln::InterruptedError(fmt::format("stopped in epoch {} at step {}", epoch, step_));
      const std::int64_t batch = std::min(settings_.batch_size, data_.rows - start);
      const auto t0 = Clock::now();
      gather(order, start, batch);
      const auto t1 = Clock::now();
      const double loss = step(batch);
      const auto t2 = Clock::now();
      if (!std::isfinite(loss))
        throw kiln::StageError(
            fmt::format("loss is {} at step {} (epoch {}): training diverged; lower train.with.lr",
                        loss, step_, epoch));
      window_.loss += loss;
      window_.wait_seconds += std::chrono::duration<double>(t1 - t0).count();
      window_.step_seconds += std::chrono::duration<double>(t2 - t0).count();
      ++window_.steps;
      window_.samples += batch;
      if (step_ % settings_.log_every == 0 || start + batch >= data_.rows) flush(epoch);
    }
  }

  void gather(const std::vector<std::int64_t>& order, std::int64_t start, std::int64_t batch) {
    const std::size_t width = static_cast<std::size_t>(data_.features);
    batch_x_.resize(static_cast<std::size_t>(batch) * width);
    batch_y_.resize(static_cast<std::size_t>(batch));
    for (std::int64_t i = 0; i < batch; ++i) {
      const std::int64_t row = order[static_cast<std::size_t>(start + i)];
      std::memcpy(batch_x_.data() + i * width, data_.x.data() + row * data_.features,
                  width * sizeof(float));
      batch_y_[static_cast<std::size_t>(i)] = data_.y[static_cast<std::size_t>(row)];
    }
  }

  double step(std::int64_t batch) {
    optimizer_->set_lr(scheduled_lr(settings_, step_, steps_per_epoch_ * settings_.epochs));
    ++step_;
    const auto forward = model_.forward(batch_x_.data(), batch);
    dlogits_.resize(forward.logits().size());
    const double loss =
        kiln::nn::softmax_cross_entropy(forward.logits().data(), batch_y_.data(), batch,
                                        data_.classes, dlogits_.data(), settings_.label_smoothing);
    window_.correct += count_correct(forward.logits(), batch_y_.data(), batch, data_.classes);
    model_.backward(forward, dlogits_.data());
    optimizer_->step(model_.parameters());
    last_loss_ = loss;
    return loss;
  }

  void flush(std::int64_t epoch) {
    if (window_.steps == 0) return;
    auto& run = context_.run();
    const double loss = window_.loss / static_cast<double>(window_.steps);
    const double samples_per_s = static_cast<double>(window_.samples) / window_.step_seconds;
    run.log_metric("train/loss", loss, step_);
    run.log_metric("train/accuracy",
                   static_cast<double>(window_.correct) / static_cast<double>(window_.samples),
                   step_);
    run.log_metric("train/lr", optimizer_->lr(), step_);
    run.log_metric("train/samples_per_s", samples_per_s, step_);
    run.log_metric("train/step_ms", 1e3 * window_.step_seconds / static_cast<double>(window_.steps),
                   step_);
    run.log_metric("train/data_wait_ms",
                   1e3 * window_.wait_seconds / static_cast<double>(window_.steps), step_);
    run.log_metric("train/epoch", static_cast<double>(epoch), step_);
    context_.progress().update({.step = step_,
                                .total_steps = steps_per_epoch_ * settings_.epochs,
                                .epoch = epoch,
                                .epochs = settings_.epochs,
                                .loss = loss,
                                .samples_per_s = samples_per_s});
    window_ = {};
  }

  kiln::StageContext& context_;
  const kiln::data::ClassificationData& data_;
  const Settings& settings_;
  kiln::nn::Mlp model_;
  std::unique_ptr<kiln::nn::Optimizer> optimizer_;
  std::int64_t steps_per_epoch_;
  std::int64_t step_ = 0;
  double last_loss_ = 0;
  Window window_;
  std::vector<float> batch_x_, dlogits_;
  std::vector<std::int32_t> batch_y_;
};

void run_train(kiln::StageContext& context) {
  const kiln::Params& params = context.params();
  const Settings settings{params.get_int_list("hidden"), params.get_int("epochs"),
                          params.get_int("batch_size"),  params.get_int("log_every"),
                          params.get_int("seed"),        params.get_float("label_smoothing"),
                          params.get_float("lr"),        params.get_string("schedule") == "cosine"};
  const int threads = kiln::set_cpu_threads(static_cast<int>(params.get_int("threads")));
  const kiln::Artifact& dataset = context.input("dataset");
  const auto data = kiln::data::load_classification_data(dataset.path);
  if (data.rows == 0) throw kiln::DataError(dataset.path.string() + ": the dataset has no rows");
  kiln::log::info(
      "train: {} rows x {} features, {} classes, MLP {}, {} epochs, batch {}, {} threads",
      data.rows, data.features, data.classes, fmt::join(settings.hidden, "-"), settings.epochs,
      settings.batch_size, threads);

  Trainer trainer(context, data, settings);
  const auto start = Clock::now();
  trainer.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  const std::string run_id = context.run().run_id();
  trainer.model().save(context.work_dir() / "model.safetensors",
                       {{"kiln.dataset", dataset.content_id}, {"kiln.run_id", run_id}});
  context.emit({.name = "model",
                .kind = "model",
                .path = "model.safetensors",
                .meta = {{"architecture", trainer.model().spec().to_json()},
                         {"dataset_id", dataset.content_id},
                         {"train_run_id", run_id},
                         {"final_loss", trainer.last_loss()},
                         {"train_seconds", seconds},
                         {"summary", fmt::format("loss {:.4f} after {} epochs ({:.1f} s)",
                                                 trainer.last_loss(), settings.epochs, seconds)}}});
}

void check_train(const kiln::Params& params) {
  for (const char* name : {"epochs", "batch_size", "log_every"})
    if (params.get_int(name) < 1) params.fail(name, "must be at least 1");
  for (const auto width : params.get_int_list("hidden"))
    if (width < 1) params.fail("hidden", "layer widths must be at least 1");
  if (params.get_float("lr") <= 0) params.fail("lr", "must be > 0");
  if (params.get_float("momentum") < 0) params.fail("momentum", "must be >= 0");
  if (params.get_bool("nesterov") &&
      (params.get_string("optimizer") != "sgd" || params.get_float("momentum") <= 0))
    params.fail("nesterov", "needs optimizer: sgd and a momentum > 0");
  if (params.get_float("weight_decay") < 0) params.fail("weight_decay", "must be >= 0");
  const double smoothing = params.get_float("label_smoothing");
  if (smoothing < 0 || smoothing >= 1) params.fail("label_smoothing", "must lie in [0, 1)");
  if (params.get_int("threads") < 0) params.fail("threads", "must be >= 0 (0: all cores)");
}

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(
      {.name = "train",
       .summary = "Train an MLP classifier on the CPU (OpenBLAS), SGD or AdamW",
       .params =
           kiln::ParamSchema()
               .optional("hidden", ParamType::IntList, nlohmann::json::array({256, 128}),
                         "hidden layer widths, each followed by ReLU")
               .optional("epochs", ParamType::Int, 10, "passes over the data")
               .optional("batch_size", ParamType::Int, 128, "samples per step")
               .choice("optimizer", {"adamw", "sgd"}, "update rule")
               .optional("lr", ParamType::Float, 1e-3, "learning rate (the peak, with a schedule)")
               .choice("schedule", {"constant", "cosine"}, "learning-rate schedule over the run")
               .optional("momentum", ParamType::Float, 0.9, "SGD momentum")
               .optional("nesterov", ParamType::Bool, false, "SGD Nesterov momentum")
               .optional("beta1", ParamType::Float, 0.9, "AdamW first-moment decay")
               .optional("beta2", ParamType::Float, 0.999, "AdamW second-moment decay")
               .optional("weight_decay", ParamType::Float, 0.0,
                         "decoupled (AdamW) or L2 (SGD) weight decay")
               .optional("label_smoothing", ParamType::Float, 0.0, "cross-entropy label smoothing")
               .optional("seed", ParamType::Int, 0, "seed of initialisation and shuffling")
               .optional("threads", ParamType::Int, 0,
                         "CPU threads; 0: KILN_NUM_THREADS or all cores")
               .optional("log_every", ParamType::Int, 50, "steps between metric lines"),
       .consumes = {"dataset"},
       .produces = {"model"},
       .check = check_train,
       .run = run_train});
}

}  // namespace

KILN_PLUGIN("train", "0.1.0", register_stages)
