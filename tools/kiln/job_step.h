// `kiln jobs step -- COMMAND...`, the supervisor a kiln submit script execs inside
// its Slurm job (job_step.cpp says what it does). Returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace kiln::cli {

int run_job_step(const std::vector<std::string>& argv);

}  // namespace kiln::cli
