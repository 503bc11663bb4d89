// Where this process sits in a data-parallel job, read from the environment of
// whichever launcher started it, in this order:
//   kiln's own launcher (`kiln run --nproc N`): KILN_RANK, KILN_WORLD_SIZE,
//     KILN_LOCAL_RANK, KILN_RDZV
//   Slurm (`srun`): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST
//     (or SLURM_JOB_NODELIST), SLURM_JOB_ID, SLURM_STEP_ID
//   Open MPI (`mpirun`): OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//     OMPI_COMM_WORLD_LOCAL_RANK
//   torchrun-style: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT;
//     TORCHELASTIC_USE_AGENT_STORE=True (torchrun's default): torchrun's agent
//     serves a PyTorch TCPStore there, and every rank is its client
//     (torch:MASTER_ADDR:MASTER_PORT/kiln/attempt_<TORCHELASTIC_RESTART_COUNT>/)
// The first launcher whose rank and world variables are both set wins; none of
// them set is a single-process run. KILN_RDZV overrides the rendezvous any of them
// implies. Local rank picks the GPU.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::dist {

// Reads one environment variable (nullptr when unset); ::getenv by default, a map
// in tests.
using EnvLookup = std::function<const char*(const char*)>;
EnvLookup process_env();

struct DistEnv {
  std::string launcher = "none";  // kiln, slurm, openmpi, torchrun, none
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  // "file:DIR", "tcp:HOST:PORT" or "torch:HOST:PORT/PREFIX"; empty: the default
  // under the registry (default_rendezvous).
  std::string rendezvous;
  std::vector<std::string> nodes;  // Slurm: the expanded node list
  std::string job_id;              // Slurm job (and step) id, for the rendezvous directory
};

// ConfigError naming the variable for a value that is not a number, a rank outside
// [0, world), a world below 1 or a malformed node list.
DistEnv detect_env(const EnvLookup& env = process_env());

// Slurm's compressed host lists: "node[01-03,07],gpu5,rack[1-2]-n[1-2]" ->
// node01 node02 node03 node07 gpu5 rack1-n1 rack1-n2 rack2-n1 rack2-n2 (zero
// padding kept). ConfigError naming `origin` for unbalanced brackets or bad ranges.
std::vector<std::string> expand_nodelist(std::string_view list,
                                         std::string_view origin = "SLURM_NODELIST");

// Where ranks meet when nothing says otherwise: a file store under the registry,
// in a directory named after the job so that concurrent jobs never share keys.
std::string default_rendezvous(const DistEnv& env, const std::filesystem::path& registry_root);

}  // namespace kiln::dist
