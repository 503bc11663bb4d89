// The training loop behind the `train` stage: mini-batches from a batch source,
// forward/backward through a Model, gradient accumulation and clipping, an
// optimizer with a learning-rate schedule, metrics every `log_every` steps,
// checkpoints every `checkpoint_every` steps and on stop, resume from the last
// checkpoint, and a guard that stops on a non-finite loss.
#pragma once

#include <kiln/nn/model.h>
#include <kiln/nn/schedule.h>
#include <kiln/progress.h>
#include <kiln/run_log.h>
#include <kiln/train/batches.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace kiln::dist {
class ProcessGroup;
}

namespace kiln::train {

struct OptimizerConfig {
  std::string kind = "adamw";  // adamw, sgd
  double momentum = 0.9;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

struct TrainerConfig {
  nlohmann::json model;                // Model spec (input shape filled in by the caller)
  std::string loss = "cross_entropy";  // cross_entropy, mse
  double label_smoothing = 0.0;
  std::int64_t epochs = 1;
  std::int64_t accumulate = 1;  // micro-batches per optimizer step
  OptimizerConfig optimizer;
  nn::Schedule schedule;   // lr and shape; total_steps is set by the trainer
  double clip_norm = 0.0;  // 0: no clipping
  std::uint64_t seed = 0;
  std::int64_t log_every = 50;        // optimizer steps between metric lines
  std::int64_t checkpoint_every = 0;  // optimizer steps between checkpoints; 0: epoch ends only
  Device device;
  nn::Precision precision = nn::Precision::F32;
  // Data-parallel gradient buckets (all-reduced as backward makes them final).
  std::size_t bucket_bytes = std::size_t{25} << 20;
  // On a GPU, in one process with one micro-batch per step: after a few eager
  // steps, capture the step as a CUDA graph and replay it for every full batch.
  bool cuda_graph = true;
};

// Where the trainer reports and keeps its state.
struct TrainerIO {
  RunLog* run = nullptr;         // metrics; may be null
  Progress* progress = nullptr;  // may be null
  std::function<bool()> stop_requested = [] { return false; };
  std::filesystem::path checkpoint_dir;  // empty: no checkpoints
  // Data-parallel training (docs/distributed.md), or nullptr for one process. The batch source
  // gives this rank its slice of every global batch; the trainer broadcasts rank
  // 0's parameters at the start (fresh or resumed), all-reduces the gradients in
  // buckets during backward, reduces the metrics, and stops (SIGINT/SIGTERM) at
  // the same step on every rank.
  dist::ProcessGroup* group = nullptr;
  // Only rank 0 writes checkpoints; every rank reads them on resume.
  bool checkpoint_writer = true;
  // Called on every rank after each epoch (1-based) and before that epoch's
  // checkpoint, with the model as trained so far: the train stage scores its
  // validation split here. A stop it requests (stop_requested) takes effect at the
  // next step.
  std::function<void(std::int64_t epoch, nn::Model& model)> on_epoch_end;
};

struct TrainResult {
  std::int64_t steps = 0;        // optimizer steps taken, resumed ones included
  std::int64_t resumed_at = -1;  // step the run resumed from, -1 for a fresh start
  double last_loss = 0.0;        // mean loss of the last logging window
  double seconds = 0.0;          // training time in this process
  std::int64_t graph_steps = 0;  // steps run as a CUDA graph replay
};

class Trainer {
 public:
  // ConfigError for an inconsistent config (model output vs. classes, accumulation).
  Trainer(TrainerConfig config, BatchSource& batches, TrainerIO io);
  ~Trainer();

  // Trains to the end. Throws InterruptedError after checkpointing when
  // stop_requested(), StageError (keeping the last good checkpoint) on a non-finite
  // loss.
  TrainResult run();
  nn::Model& model();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kiln::train
