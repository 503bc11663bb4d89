// The training step's CUDA graph (train/step_graph.h) on its own: the nodes a
// replay rewrites are the ones the capture recorded for each step-dependent launch.
// (trainer_cuda_test.cpp checks whole training runs replayed against eager ones.)
#include <string>

#include "ops/activation.h"
#include "ops/step_kernels.h"
#include "ops_cuda/cuda_twin.h"
#include "train/step_graph.h"

namespace kiln::ops::test {
namespace {

class StepGraphCuda : public CudaTwin {};

void two_floats_then_a_draw(std::int64_t, float, float, DropoutDraw, float*) {}

// A rewritable parameter's place comes from the kernel's own signature (no GPU
// needed): reordering the parameters moves it along.
TEST(StepParameter, PositionAndCountComeFromTheKernelsDeclaration) {
  const StepParameter draw = step_parameter<DropoutDraw>(two_floats_then_a_draw, "draw");
  EXPECT_EQ(draw.kernel, reinterpret_cast<const void*>(two_floats_then_a_draw));
  EXPECT_STREQ(draw.name, "draw");
  EXPECT_EQ(draw.index, 3);
  EXPECT_EQ(draw.count, 5);
  EXPECT_EQ(draw.size, sizeof(DropoutDraw));
  EXPECT_EQ(dropout_draw_parameter().size, sizeof(DropoutDraw));
}

// The graph finds dropout's node from the capture itself and rewrites its step:
// each replay draws the mask the eager kernel draws for that step.
TEST_F(StepGraphCuda, RewritesTheDropoutNodeItCaptured) {
  const Tensor x = random_tensor({1000, 33}, 5).to(gpu());
  const DropoutDraw captured{.seed = 77, .layer = 2, .step = 3};
  Tensor y = poisoned(x.shape()), mask = poisoned(x.shape(), DType::U8);
  train::StepGraph graph(gpu());
  const std::string failure = graph.capture([&] { dropout_forward(x, 0.25f, captured, y, mask); });
  ASSERT_EQ(failure, "") << "the capture fell back to eager";
  ASSERT_TRUE(graph.ready());
  for (const std::uint32_t step : {3u, 4u, 1000u}) {
    graph.set_dropout_step(step);
    graph.replay();
    DropoutDraw eager_draw = captured;
    eager_draw.step = step;
    Tensor y_eager = poisoned(x.shape()), mask_eager = poisoned(x.shape(), DType::U8);
    dropout_forward(x, 0.25f, eager_draw, y_eager, mask_eager);
    expect_equal(mask, mask_eager.to(Device::cpu()), "mask at step " + std::to_string(step));
    expect_equal(y, y_eager.to(Device::cpu()), "dropout at step " + std::to_string(step));
  }
}

}  // namespace
}  // namespace kiln::ops::test
