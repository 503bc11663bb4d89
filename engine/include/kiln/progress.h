// One live progress line per running stage. On a terminal the line is redrawn in
// place (at most 10 times a second); when stderr is not a terminal (Slurm logs,
// pipes) a plain line is written every `KILN_PROGRESS_SECONDS` (default 10) and at
// the last step, so logs stay readable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kiln {

struct ProgressUpdate {
  std::int64_t step = 0;         // steps done, 1-based after the first step
  std::int64_t total_steps = 0;  // 0 when unknown
  std::int64_t epoch = 0;        // 1-based; 0 when the stage has no epochs
  std::int64_t epochs = 0;
  std::optional<double> loss;
  std::optional<double> samples_per_s;
  std::string note;  // free text, e.g. "reading chunk 3/60"
};

class Progress {
 public:
  virtual ~Progress();
  virtual void update(const ProgressUpdate& update) = 0;
  // Removes the live line; the stage's final log line replaces it.
  virtual void finish() = 0;
};

}  // namespace kiln
