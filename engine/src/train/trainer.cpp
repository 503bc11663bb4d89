#include <kiln/dist/process_group.h>
#include <kiln/error.h>
#include <kiln/log.h>
#include <kiln/nn/optimizer.h>
#include <kiln/train/objectives.h>
#include <kiln/train/trainer.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <span>

#include "ops/loss.h"
#include "ops/precision.h"
#include "train/checkpoint.h"
#include "train/gradient_reducer.h"
#ifdef KILN_HAVE_CUDA
#include "train/step_graph.h"
#endif

namespace kiln::train {
namespace {

using Clock = std::chrono::steady_clock;

#ifdef KILN_HAVE_CUDA
// Eager steps before a CUDA graph is captured: cuDNN's algorithm choice, the
// libraries' workspaces and the optimizer's state are settled by then.
constexpr std::int64_t kEagerStepsBeforeGraph = 3;
#endif

// Sums between two metric lines.
struct Window {
  double loss = 0, correct = 0, step_seconds = 0, wait_seconds = 0, grad_norm = 0;
  std::int64_t steps = 0, samples = 0;
  std::int64_t local_samples = 0;  // this rank's rows (data parallel)
  std::int64_t read_step = 0;      // the last step whose device sums have been read
};

}  // namespace

struct Trainer::State {
  TrainerConfig config;
  const LossType& loss_fn;
  BatchSource& batches;
  TrainerIO io;
  nn::Model model;
  std::unique_ptr<nn::Optimizer> optimizer;
  std::vector<nn::Parameter*> parameters;
  Position position;
  Window window;
  double last_loss = 0;
  // The steps' sums of loss, correct predictions and gradient norm, kept on the
  // model's device and read back only where a metric line or a checkpoint needs
  // them (flush): the step loop itself never waits for the device.
  Tensor sums, loss_sum, correct, norm_sum;  // [3] and its elements
  // Data parallel only: the group of the gradients (the job's group for CPU
  // tensors, an NCCL group over the same ranks for CUDA tensors) and its reducer.
  std::unique_ptr<dist::ProcessGroup> device_group;
  std::unique_ptr<GradientReducer> reducer;
  bool stop_agreed = false;  // a rank asked to stop: all stop here
#ifdef KILN_HAVE_CUDA
  // The captured step, its fixed inputs, and whether capturing was given up.
  std::unique_ptr<StepGraph> graph;
  Tensor graph_x, graph_y;
  std::int64_t eager_full_steps = 0;
  bool graph_refused = false;
#endif
  std::int64_t graph_steps = 0;

  dist::ProcessGroup* group() const { return io.group; }
  dist::ProcessGroup& gradient_group() const { return device_group ? *device_group : *io.group; }

  State(TrainerConfig c, BatchSource& source, TrainerIO trainer_io)
      : config(std::move(c)),
        loss_fn(loss_type(config.loss)),
        batches(source),
        io(std::move(trainer_io)),
        model(nn::Model::build(config.model, config.seed, config.device)),
        optimizer(optimizer_type(config.optimizer.kind).make(config.optimizer, config.schedule.lr)),
        parameters(model.parameters()),
        sums(Tensor::zeros({3}, DType::F32, config.device)),
        loss_sum(sums.rows(0, 1)),
        correct(sums.rows(1, 2)),
        norm_sum(sums.rows(2, 3)) {}

  std::filesystem::path checkpoint_file() const {
    return io.checkpoint_dir / "checkpoint.safetensors";
  }
  void checkpoint() {
    if (!io.checkpoint_dir.empty() && io.checkpoint_writer)
      save_checkpoint(checkpoint_file(), model, *optimizer, position);
  }

  // Every rank starts from rank 0's weights (and batch-norm statistics), fresh or
  // resumed: initialisation is seeded alike, but this makes it a fact.
  void broadcast_state() {
    for (nn::Parameter* p : parameters) gradient_group().broadcast(p->value, 0);
    for (auto& [name, buffer] : model.buffers()) gradient_group().broadcast(*buffer, 0);
  }

  // Whether any rank was asked to stop (SIGINT/SIGTERM): one tiny all-reduce on
  // the host per step, so that every rank stops after the same step.
  void agree_on_stop() {
    float stop = io.stop_requested() ? 1.0f : 0.0f;
    if (dist::ProcessGroup* g = group()) g->all_reduce(std::span<float>(&stop, 1));
    stop_agreed = stop > 0;
  }

  // Reads the device sums into the window (the only wait for the device in the
  // loop), summed over ranks. Every rank flushes after the same steps. StageError
  // if the loss is not finite: training diverged in the steps read.
  void flush() {
    const std::int64_t first = window.read_step + 1, last = position.step;
    if (last < first) return;
    std::vector<float> values = sums.to_vector();
    sums.zero();
    window.read_step = last;
    // The gradient norm is the same on every rank (it is taken after the reduction).
    if (dist::ProcessGroup* g = group()) g->all_reduce(std::span<float>(values.data(), 2));
    if (!std::isfinite(values[0]))
      throw StageError(
          fmt::format("loss is {} {} (epoch {}): training diverged; the last good "
                      "checkpoint is kept. Lower the learning rate or clip "
                      "gradients (clip_norm)",
                      values[0],
                      first == last ? fmt::format("at step {}", last)
                                    : fmt::format("in steps {}-{}", first, last),
                      position.epoch + 1));
    window.loss += values[0];
    window.correct += values[1];
    window.grad_norm += values[2];
  }

  // Samples per second of each rank (its own rows), for train/rank<K>/samples_per_s.
  std::vector<float> rank_throughput() {
    dist::ProcessGroup* g = group();
    if (g == nullptr || g->size() == 1) return {};
    std::vector<float> rates(static_cast<std::size_t>(g->size()), 0.0f);
    rates[static_cast<std::size_t>(g->rank())] =
        static_cast<float>(static_cast<double>(window.local_samples) / window.step_seconds);
    g->all_reduce(std::span<float>(rates));
    return rates;
  }

  // One micro-batch: forward, loss, backward (gradients add up).
  void micro_step(const Batch& batch, float grad_scale) {
    nn::ForwardContext context;
    const nn::StepInfo info{nn::Mode::Train, config.seed, position.step, config.precision};
    const Tensor out = model.forward(batch.x, info, context);
    Tensor dout = Tensor::empty(out.shape(), DType::F32, out.device());
    loss_fn.compute(out, batch.y, static_cast<float>(config.label_smoothing), grad_scale, dout,
                    loss_sum, correct);
    model.backward(context, dout);
  }

  void clip_and_update() {
    if (config.clip_norm > 0) nn::clip_grad_norm(parameters, config.clip_norm, norm_sum);
    optimizer->step(parameters);
  }

  // One optimizer step over its micro-batches (`rows`: of the global batch).
  void compute_step(const std::vector<Batch>& micro_batches, std::int64_t rows) {
    const float grad_scale = 1.0f / static_cast<float>(rows);
#ifdef KILN_HAVE_CUDA
    if (graphable(micro_batches) && graph_step(micro_batches.front(), grad_scale)) return;
#endif
    // Data parallel: a rank may have no rows in a short last batch (loader.h); it
    // skips the pass but still joins every bucket's all-reduce with zero gradients.
    const bool passes = std::any_of(micro_batches.begin(), micro_batches.end(),
                                    [](const Batch& batch) { return batch.x.dim(0) > 0; });
    if (passes)
      model.zero_grad_before_backward();
    else
      model.zero_grad();
    for (std::size_t m = 0; m < micro_batches.size(); ++m) {
      const bool last = m + 1 == micro_batches.size();
      if (micro_batches[m].x.dim(0) == 0) {
        if (reducer && last) reducer->reduce_without_backward();
        continue;
      }
      if (reducer && last) reducer->arm();
      micro_step(micro_batches[m], grad_scale);
    }
    if (reducer) reducer->wait();
    clip_and_update();
  }

#ifdef KILN_HAVE_CUDA
  // A graph serves one process on a GPU with one micro-batch per step, and only
  // full batches (the shape it was captured with; an epoch's short last batch runs
  // eagerly).
  bool graphable(const std::vector<Batch>& micro_batches) const {
    return config.cuda_graph && config.device.is_cuda() && group() == nullptr && !graph_refused &&
           micro_batches.size() == 1 &&
           (!graph_x.defined() || micro_batches.front().x.shape() == graph_x.shape());
  }

  // Runs the step as a graph replay (capturing it first, after the eager steps),
  // or returns false for the eager path.
  bool graph_step(const Batch& batch, float grad_scale) {
    if (!graph) {
      if (++eager_full_steps <= kEagerStepsBeforeGraph) return false;
      if (!capture_graph(batch, grad_scale)) return false;
    } else {
      graph_x.copy_from(batch.x);
      graph_y.copy_from(batch.y);
      {
        // The optimizer's bookkeeping advances as in an eager step; its kernel's
        // scalars go into the graph instead of a launch.
        ops::StepKernelLog log(ops::StepKernelLog::Mode::Defer);
        optimizer->step(parameters);
        graph->set_arguments(log.deferred());
      }
      graph->set_dropout_step(static_cast<std::uint32_t>(position.step));
    }
    graph->replay();
    ++graph_steps;
    return true;
  }

  bool capture_graph(const Batch& batch, float grad_scale) {
    graph_x = batch.x.clone();
    graph_y = batch.y.clone();
    const nlohmann::json optimizer_before = optimizer->state_scalars();
    graph = std::make_unique<StepGraph>(config.device);
    const std::string failure = graph->capture([&] {
      model.zero_grad();
      micro_step(Batch{.x = graph_x, .y = graph_y}, grad_scale);
      clip_and_update();
    });
    if (failure.empty()) {
      log::debug("train: step {} captured as a CUDA graph; full batches replay it", position.step);
      return true;
    }
    // Nothing ran; only the optimizer's step count moved on.
    optimizer->load_state(parameters, optimizer->state_tensors(), optimizer_before);
    log::warn("train: the step cannot be captured as a CUDA graph ({}); training goes on without",
              failure);
    graph.reset();
    graph_x = graph_y = Tensor();
    graph_refused = true;
    return false;
  }
#endif

  // `epoch`: the 1-based epoch the window's last step belongs to.
  void log_window(std::int64_t epoch) {
    if (window.steps == 0) return;
    const double loss = window.loss / static_cast<double>(window.samples);
    last_loss = loss;
    const double samples_per_s = static_cast<double>(window.samples) / window.step_seconds;
    const std::vector<float> rates = rank_throughput();
    if (io.run != nullptr) {
      auto& run = *io.run;
      for (std::size_t r = 0; r < rates.size(); ++r)
        run.log_metric(fmt::format("train/rank{}/samples_per_s", r), rates[r], position.step);
      const std::int64_t step = position.step;
      run.log_metric("train/loss", loss, step);
      if (loss_fn.classifies)
        run.log_metric("train/accuracy", window.correct / static_cast<double>(window.samples),
                       step);
      run.log_metric("train/lr", optimizer->lr(), step);
      run.log_metric("train/samples_per_s", samples_per_s, step);
      run.log_metric("train/step_ms", 1e3 * window.step_seconds / static_cast<double>(window.steps),
                     step);
      run.log_metric("train/data_wait_ms",
                     1e3 * window.wait_seconds / static_cast<double>(window.steps), step);
      run.log_metric("train/epoch", static_cast<double>(epoch), step);
      if (config.clip_norm > 0)
        run.log_metric("train/grad_norm", window.grad_norm / static_cast<double>(window.steps),
                       step);
    }
    if (io.progress != nullptr)
      io.progress->update({.step = position.step,
                           .total_steps = config.schedule.total_steps,
                           .epoch = epoch,
                           .epochs = config.epochs,
                           .loss = loss,
                           .samples_per_s = samples_per_s});
    window = {.read_step = window.read_step};
  }
};

Trainer::Trainer(TrainerConfig config, BatchSource& batches, TrainerIO io) {
  if (config.accumulate < 1) throw ConfigError("accumulate must be at least 1");
  if (config.epochs < 1) throw ConfigError("epochs must be at least 1");
  const std::int64_t per_epoch =
      (batches.batches_per_epoch() + config.accumulate - 1) / config.accumulate;
  config.schedule.total_steps = std::max<std::int64_t>(1, per_epoch * config.epochs);
  config.schedule.check();
  if (config.precision == nn::Precision::BF16 && !config.device.is_cuda() && !ops::cpu_has_bf16()) {
    log::warn(
        "train: precision bf16 needs AVX512-BF16 or AMX-BF16 instructions, which this CPU "
        "lacks (oneDNN runs {} here); training in float32",
        ops::cpu_isa_name());
    config.precision = nn::Precision::F32;
  } else if (config.precision == nn::Precision::BF16 && !config.device.is_cuda() &&
             !ops::cpu_has_amx()) {
    // oneDNN's AVX512-BF16 products measured slower than its float32 ones on the
    // Xeon of benchmarks/RESULTS.md, and every product first rounds its factors.
    log::warn(
        "train: precision bf16 runs on avx512_core_bf16 here, without AMX-BF16; on a Xeon "
        "without AMX it measured slower than float32 (the MLP at 0.62x, the CNN at 0.71x, "
        "benchmarks/RESULTS.md): precision f32 is the faster choice there");
  }
  state_ = std::make_unique<State>(std::move(config), batches, std::move(io));
  if (batches.sample_shape() != state_->model.input_shape())
    throw ConfigError(fmt::format("the data's rows are {} but the model's input is {}",
                                  shape_string(batches.sample_shape()),
                                  shape_string(state_->model.input_shape())));
  const Shape& output = state_->model.output_shape();
  if (state_->loss_fn.classifies && (output.size() != 1 || output[0] < batches.classes()))
    throw ConfigError(
        fmt::format("the model's output {} cannot score {} classes: the last layer "
                    "needs out: {}",
                    shape_string(output), batches.classes(), batches.classes()));
  State& s = *state_;
  if (dist::ProcessGroup* group = s.group()) {
    if (s.config.device.is_cuda()) s.device_group = group->device_group(s.config.device);
    s.reducer =
        std::make_unique<GradientReducer>(s.model, s.gradient_group(), s.config.bucket_bytes);
  }
}

Trainer::~Trainer() = default;

nn::Model& Trainer::model() { return state_->model; }

TrainResult Trainer::run() {
  State& s = *state_;
  TrainResult result;
  if (auto resumed = load_checkpoint(s.checkpoint_file(), s.model, *s.optimizer)) {
    s.position = *resumed;
    result.resumed_at = s.position.step;
    log::info("train: resuming from the checkpoint at step {} (epoch {}, batch {})",
              s.position.step, s.position.epoch + 1, s.position.batch);
  }
  if (s.group() != nullptr) s.broadcast_state();
  const auto start = Clock::now();
  const std::int64_t per_epoch = s.batches.batches_per_epoch();
  s.window.read_step = s.position.step;
  while (s.position.epoch < s.config.epochs) {
    s.batches.start_epoch(s.position.epoch, s.position.batch);
    Batch batch;
    while (s.position.batch < per_epoch) {
      if (s.stop_agreed || (s.group() == nullptr && s.io.stop_requested())) {
        s.flush();  // a diverged run keeps its last good checkpoint
        s.checkpoint();
        throw InterruptedError(
            fmt::format("stopped at step {} (epoch {}); the checkpoint resumes there",
                        s.position.step, s.position.epoch + 1));
      }
      const auto step_start = Clock::now();
      const double wait_before = s.batches.wait_seconds();
      s.optimizer->set_lr(s.config.schedule.at(s.position.step));
      // The step's loss is a mean over the global batch: rows of every rank.
      std::int64_t rows = 0, micro = 0;
      // The micro-batches of one step; the last step of an epoch may have fewer.
      std::vector<Batch> micro_batches;
      while (micro < s.config.accumulate && s.position.batch < per_epoch && s.batches.next(batch)) {
        micro_batches.push_back(batch);
        rows += batch.global_rows;
        s.window.local_samples += batch.x.dim(0);
        ++micro;
        ++s.position.batch;
      }
      s.compute_step(micro_batches, rows);
      if (s.group() != nullptr) s.agree_on_stop();
      ++s.position.step;
      s.window.samples += rows;
      ++s.window.steps;
      const bool epoch_end = s.position.batch >= per_epoch;
      const bool log_now = s.position.step % s.config.log_every == 0 || epoch_end;
      const bool checkpoint_now = epoch_end || (s.config.checkpoint_every > 0 &&
                                                s.position.step % s.config.checkpoint_every == 0);
      if (log_now || checkpoint_now) s.flush();
      s.window.wait_seconds += s.batches.wait_seconds() - wait_before;
      s.window.step_seconds += std::chrono::duration<double>(Clock::now() - step_start).count();
      const std::int64_t epoch = s.position.epoch + 1;
      if (epoch_end) {
        ++s.position.epoch;
        s.position.batch = 0;
      }
      if (log_now) s.log_window(epoch);
      if (epoch_end && s.io.on_epoch_end) s.io.on_epoch_end(epoch, s.model);
      if (checkpoint_now) s.checkpoint();
      if (epoch_end) break;
    }
  }
  result.steps = s.position.step;
  result.last_loss = s.last_loss;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.graph_steps = s.graph_steps;
  return result;
}

}  // namespace kiln::train
