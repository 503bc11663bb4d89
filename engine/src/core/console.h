// Private: the terminal shared by log lines and live progress lines.
#pragma once

#include <kiln/progress.h>

#include <memory>
#include <string>

namespace kiln {

// True when stderr is a terminal and KILN_PLAIN_PROGRESS is not set.
bool stderr_is_live_terminal();

// A progress reporter for one stage: a live line on a terminal, plain log lines
// otherwise.
std::unique_ptr<Progress> make_progress(std::string stage_name);

// Formats the fields of an update as one line (shared by both reporters).
std::string format_progress(const std::string& stage_name, const ProgressUpdate& update,
                            double elapsed_seconds);

}  // namespace kiln
