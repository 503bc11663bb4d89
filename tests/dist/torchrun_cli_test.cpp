// `kiln run` under torchrun's environment contract with its agent store
// (TORCHELASTIC_USE_AGENT_STORE=True): a torch.distributed.TCPStore already
// serves MASTER_ADDR:MASTER_PORT, as torchrun's agent does, and two ranks
// started with the variables torchrun sets meet through it and train. Debian's
// torch 1.13 `torchrun` itself fails under Python 3.11 before it starts a worker
// (torch's bug), so the test plays the agent instead of running torchrun.
#include <fmt/format.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dist/dist_support.h"
#include "dist/free_port.h"
#include "dist/torch_agent_store.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

// What torchrun's local agent exports to worker `rank` of a one-node job of
// `world` workers (torch/distributed/elastic/agent/server/local_elastic_agent.py).
std::map<std::string, std::string> torchrun_env(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"GROUP_RANK", "0"},
          {"ROLE_RANK", std::to_string(rank)},
          {"ROLE_NAME", "default"},
          {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"WORLD_SIZE", std::to_string(world)},
          {"GROUP_WORLD_SIZE", "1"},
          {"ROLE_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(port)},
          {"TORCHELASTIC_RESTART_COUNT", "0"},
          {"TORCHELASTIC_MAX_RESTARTS", "0"},
          {"TORCHELASTIC_RUN_ID", "none"},
          {"TORCHELASTIC_USE_AGENT_STORE", "True"},
          {"NCCL_ASYNC_ERROR_HANDLING", "1"},
          {"KILN_PLAIN_PROGRESS", "1"}};
}

// The agent's store holds MASTER_PORT: a rank that tried to serve there would
// fail to bind, so passing means no rank served.
TEST_F(DistCliTest, TwoTorchrunRanksTrainThroughTheAgentStore) {
  AgentStore agent;
  if (auto skip = agent.start(KILN_PYTHON, "default",
                              {"torch_key", "kiln/attempt_0/protocol", "kiln/attempt_0/hb.0",
                               "kiln/attempt_0/hb.1", "hb.0", "kiln/hb.0"}))
    FAIL() << *skip << " (Debian's python3-torch in the venv: tools/install-deps.sh)";
  ASSERT_GT(agent.port(), 0) << agent.output();

  const CommandResult one = kiln_in(dir_ / "one", {"run", "p.yaml"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  std::vector<Background> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    auto env = torchrun_env(rank, 2, agent.port());
    env["KILN_REGISTRY"] = registry().string();
    ranks.push_back(start({"run", "p.yaml"}, env, fmt::format("rank{}", rank)));
  }
  for (const Background& rank : ranks)
    EXPECT_EQ(finish(rank), 0) << read_text(rank.err) << read_text(rank.out);
  const std::string err0 = read_text(ranks[0].err);
  EXPECT_THAT(
      err0, HasSubstr(fmt::format("rendezvous torch:127.0.0.1:{}/kiln/attempt_0/)", agent.port())))
      << err0;
  EXPECT_THAT(read_text(ranks[0].out), HasSubstr("run "));
  EXPECT_THAT(read_text(ranks[1].out), HasSubstr("rank 1 of 2: done"));
  // Rank 0 alone wrote the registry: one FINISHED run; two ranks with half the
  // global batch each train the one-process model (the tolerance of the --nproc
  // tests: the partial gradients add up in another order).
  EXPECT_THAT(run_statuses(registry()), ::testing::ElementsAre(3));
  const double difference =
      max_weight_difference(trained_model(dir_ / "one"), trained_model(registry()));
  EXPECT_LT(difference, 1e-5);
  std::cout << "2 torchrun ranks vs 1 process: max weight difference " << difference << "\n";

  // As torch sees its store: its own key untouched, kiln's under kiln/attempt_0/.
  const std::string report = agent.finish();
  EXPECT_THAT(report, HasSubstr("torch_key = b'torch value'"));
  EXPECT_THAT(report, HasSubstr("kiln/attempt_0/protocol = b\"PyTorch's TCPStore without "));
  EXPECT_THAT(report, HasSubstr("kiln/attempt_0/hb.0 = b'"));
  EXPECT_THAT(report, HasSubstr("kiln/attempt_0/hb.1 = b'"));
  EXPECT_THAT(report, HasSubstr("\nhb.0: missing"));
  EXPECT_THAT(report, HasSubstr("\nkiln/hb.0: missing"));
  std::cout << report;
}

TEST_F(DistCliTest, AnUnreachableAgentStoreIsOneErrorLine) {
  const int port = free_port();
  auto env = torchrun_env(0, 2, port);
  env["KILN_REGISTRY"] = registry().string();
  env["KILN_COLLECTIVE_TIMEOUT_S"] = "1";
  const CommandResult result =
      run_command({std::string(KILN_BINARY_DIR) + "/bin/kiln", "run", "p.yaml"}, env, dir_.path());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
  EXPECT_THAT(result.err,
              HasSubstr(fmt::format("rendezvous torch:127.0.0.1:{}/kiln/attempt_0/", port)));
  EXPECT_THAT(result.err, HasSubstr("cannot connect within 1.0 s"));
  EXPECT_THAT(result.err, HasSubstr(fmt::format("MASTER_ADDR:MASTER_PORT=127.0.0.1:{}", port)));
  EXPECT_THAT(result.err, ::testing::Not(HasSubstr("Address already in use")));
}

}  // namespace
}  // namespace kiln::test
