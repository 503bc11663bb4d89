// Rank and world detection from each launcher's environment, and Slurm node lists.
#include <kiln/dist/env.h>
#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace kiln::dist {
namespace {

using Env = std::map<std::string, std::string>;

DistEnv detect(const Env& vars) {
  return detect_env([&](const char* name) -> const char* {
    const auto found = vars.find(name);
    return found == vars.end() ? nullptr : found->second.c_str();
  });
}

std::string config_error(const Env& vars) {
  try {
    detect(vars);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "no error";
}

TEST(DistEnv, NothingSetIsOneProcess) {
  const DistEnv env = detect({});
  EXPECT_EQ(env.launcher, "none");
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
}

TEST(DistEnv, KilnLauncher) {
  const DistEnv env = detect({{"KILN_RANK", "2"},
                              {"KILN_WORLD_SIZE", "4"},
                              {"KILN_LOCAL_RANK", "2"},
                              {"KILN_RDZV", "file:/tmp/r"}});
  EXPECT_EQ(env.launcher, "kiln");
  EXPECT_EQ(env.rank, 2);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 2);
  EXPECT_EQ(env.rendezvous, "file:/tmp/r");
}

TEST(DistEnv, Slurm) {
  const DistEnv env = detect({{"SLURM_PROCID", "5"},
                              {"SLURM_NTASKS", "8"},
                              {"SLURM_LOCALID", "1"},
                              {"SLURM_NODELIST", "node[01-03,07]"},
                              {"SLURM_JOB_ID", "4242"},
                              {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(env.launcher, "slurm");
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_THAT(env.nodes, ::testing::ElementsAre("node01", "node02", "node03", "node07"));
  EXPECT_EQ(env.job_id, "4242.0");
  EXPECT_EQ(default_rendezvous(env, "/shared/registry"), "file:/shared/registry/rdzv/slurm-4242.0");
}

TEST(DistEnv, SlurmRequeueGetsItsOwnRendezvous) {
  const DistEnv env = detect({{"SLURM_PROCID", "0"},
                              {"SLURM_NTASKS", "2"},
                              {"SLURM_JOB_NODELIST", "gpu1"},
                              {"SLURM_JOB_ID", "77"},
                              {"SLURM_RESTART_COUNT", "2"}});
  EXPECT_EQ(env.job_id, "77.r2");
  EXPECT_THAT(env.nodes, ::testing::ElementsAre("gpu1"));
}

TEST(DistEnv, SlurmTcpPortTakesTheFirstNode) {
  const DistEnv env = detect({{"SLURM_PROCID", "1"},
                              {"SLURM_NTASKS", "2"},
                              {"SLURM_NODELIST", "cn[12-13]"},
                              {"KILN_RDZV", "tcp:29500"}});
  EXPECT_EQ(env.rendezvous, "tcp:cn12:29500");
}

TEST(DistEnv, OpenMpi) {
  const DistEnv env = detect({{"OMPI_COMM_WORLD_RANK", "3"},
                              {"OMPI_COMM_WORLD_SIZE", "4"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                              {"OMPI_MCA_ess_base_jobid", "123"}});
  EXPECT_EQ(env.launcher, "openmpi");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(default_rendezvous(env, "/r"), "file:/r/rdzv/openmpi-123");
}

TEST(DistEnv, Torchrun) {
  const DistEnv env = detect({{"RANK", "1"},
                              {"WORLD_SIZE", "2"},
                              {"LOCAL_RANK", "0"},
                              {"MASTER_ADDR", "10.0.0.5"},
                              {"MASTER_PORT", "29500"}});
  EXPECT_EQ(env.launcher, "torchrun");
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.rendezvous, "tcp:10.0.0.5:29500");
}

// torchrun's default: its agent serves a PyTorch TCPStore on MASTER_PORT, so no
// rank serves; kiln's keys go under the attempt, which a restart changes.
TEST(DistEnv, TorchrunAgentStoreMakesEveryRankAClient) {
  Env vars{{"RANK", "0"},
           {"WORLD_SIZE", "2"},
           {"MASTER_ADDR", "10.0.0.5"},
           {"MASTER_PORT", "29500"},
           {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
  EXPECT_EQ(detect(vars).rendezvous, "torch:10.0.0.5:29500/kiln/attempt_0/");
  vars["TORCHELASTIC_RESTART_COUNT"] = "2";
  EXPECT_EQ(detect(vars).rendezvous, "torch:10.0.0.5:29500/kiln/attempt_2/");
  // torch compares the value with str(True): anything else is no agent store.
  for (const char* other : {"False", "true", "1"}) {
    vars["TORCHELASTIC_USE_AGENT_STORE"] = other;
    EXPECT_EQ(detect(vars).rendezvous, "tcp:10.0.0.5:29500") << other;
  }
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  vars["KILN_RDZV"] = "file:/shared/rdzv";
  EXPECT_EQ(detect(vars).rendezvous, "file:/shared/rdzv");
  vars.erase("KILN_RDZV");
  vars["TORCHELASTIC_RESTART_COUNT"] = "x";
  EXPECT_THAT(config_error(vars), ::testing::HasSubstr("TORCHELASTIC_RESTART_COUNT='x'"));
}

TEST(DistEnv, LaunchersAreTriedInOrder) {
  // Slurm inside an allocation that also exports torchrun variables: Slurm wins;
  // kiln's own launcher wins over both.
  const Env slurm_and_torch = {
      {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"RANK", "0"}, {"WORLD_SIZE", "4"}};
  EXPECT_EQ(detect(slurm_and_torch).launcher, "slurm");
  Env all = slurm_and_torch;
  all["KILN_RANK"] = "0";
  all["KILN_WORLD_SIZE"] = "3";
  all["OMPI_COMM_WORLD_RANK"] = "0";
  all["OMPI_COMM_WORLD_SIZE"] = "5";
  EXPECT_EQ(detect(all).launcher, "kiln");
  EXPECT_EQ(detect(all).world_size, 3);
  EXPECT_EQ(detect({{"OMPI_COMM_WORLD_RANK", "0"},
                    {"OMPI_COMM_WORLD_SIZE", "5"},
                    {"RANK", "0"},
                    {"WORLD_SIZE", "4"}})
                .launcher,
            "openmpi");
  // A launcher with only half its variables is not that launcher.
  EXPECT_EQ(detect({{"SLURM_PROCID", "0"}, {"RANK", "0"}, {"WORLD_SIZE", "2"}}).launcher,
            "torchrun");
}

TEST(DistEnv, BadValuesNameTheVariable) {
  EXPECT_THAT(config_error({{"SLURM_PROCID", "x1"}, {"SLURM_NTASKS", "2"}}),
              ::testing::HasSubstr("SLURM_PROCID='x1': expected an integer"));
  EXPECT_THAT(config_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}),
              ::testing::HasSubstr("RANK=2: must lie in [0, 2)"));
  EXPECT_THAT(config_error({{"KILN_RANK", "0"}, {"KILN_WORLD_SIZE", "0"}}),
              ::testing::HasSubstr("KILN_WORLD_SIZE=0: must be at least 1"));
  EXPECT_THAT(
      config_error(
          {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "http"}}),
      ::testing::HasSubstr("MASTER_PORT='http'"));
  EXPECT_THAT(config_error(
                  {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NODELIST", "node[01-03"}}),
              ::testing::HasSubstr("SLURM_NODELIST='node[01-03': unbalanced brackets"));
}

TEST(DistEnv, NoRendezvousWithoutAJobIdIsAnError) {
  const DistEnv env = detect({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
  try {
    default_rendezvous(env, "/r");
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_THAT(error.what(), ::testing::HasSubstr("set KILN_RDZV (or --rdzv)"));
  }
}

TEST(Nodelist, Expands) {
  EXPECT_THAT(expand_nodelist("node[01-03,07]"),
              ::testing::ElementsAre("node01", "node02", "node03", "node07"));
  EXPECT_THAT(expand_nodelist("a1,b[9-11],c"),
              ::testing::ElementsAre("a1", "b9", "b10", "b11", "c"));
  EXPECT_THAT(expand_nodelist("gpu[001-002]-ib"), ::testing::ElementsAre("gpu001-ib", "gpu002-ib"));
  EXPECT_THAT(expand_nodelist("r[1-2]-n[1-2]"),
              ::testing::ElementsAre("r1-n1", "r1-n2", "r2-n1", "r2-n2"));
  EXPECT_THAT(expand_nodelist("single"), ::testing::ElementsAre("single"));
}

TEST(Nodelist, RejectsMalformed) {
  for (const char* bad : {"n[1-", "n1]", "n[a-b]", "n[3-1]", "n[]", "a,,b", "n[[1]]"})
    EXPECT_THROW(expand_nodelist(bad), ConfigError) << bad;
}

TEST(Rendezvous, Parses) {
  const RendezvousSpec file = parse_rendezvous("file:/shared/x", "--rdzv");
  EXPECT_EQ(file.kind, RendezvousSpec::Kind::File);
  EXPECT_EQ(file.dir, "/shared/x");
  const RendezvousSpec tcp = parse_rendezvous("tcp:node01:29500", "--rdzv");
  EXPECT_EQ(tcp.kind, RendezvousSpec::Kind::Tcp);
  EXPECT_EQ(tcp.host, "node01");
  EXPECT_EQ(tcp.port, 29500);
  EXPECT_EQ(parse_rendezvous("tcp:[::1]:80", "--rdzv").host, "::1");
  const RendezvousSpec torch = parse_rendezvous("torch:10.0.0.5:29500/kiln/attempt_1", "KILN_RDZV");
  EXPECT_EQ(torch.kind, RendezvousSpec::Kind::Torch);
  EXPECT_EQ(torch.host, "10.0.0.5");
  EXPECT_EQ(torch.port, 29500);
  EXPECT_EQ(torch.prefix, "kiln/attempt_1/");
  EXPECT_EQ(parse_rendezvous("torch:[::1]:29500", "KILN_RDZV").prefix, "kiln/");
  EXPECT_EQ(parse_rendezvous("torch:[::1]:29500", "KILN_RDZV").host, "::1");
  for (const char* bad : {"nfs:/x", "file:", "tcp:host", "tcp:host:0", "tcp:host:99999", "tcp::5",
                          "torch:host", "torch:host:5/", "torch:/kiln"})
    EXPECT_THROW(parse_rendezvous(bad, "--rdzv"), ConfigError) << bad;
}

}  // namespace
}  // namespace kiln::dist
