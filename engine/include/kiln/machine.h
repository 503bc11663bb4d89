// What this process runs on, for the records that must say where a figure came
// from: a run's tags (kiln.engine, kiln.cpu) and a bench run's fingerprint.
#pragma once

#include <string>

namespace kiln {

// /proc/cpuinfo's "model name", or "" where there is none.
std::string cpu_model();

// The build of libkiln that runs: "sha256:<hex>" of its file, or "" where it cannot
// be read. Two processes with the same value run the same engine code.
std::string engine_build();

// The instruction set oneDNN's CPU kernels use here ("avx512_core_amx", "avx2", ...)
// and oneDNN's version ("3.0.0").
std::string cpu_math_isa();
std::string onednn_version();

}  // namespace kiln
