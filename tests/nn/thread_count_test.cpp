// kiln's own CPU loops that split over the OpenMP threads (elementwise ops and the
// optimizer updates by element, pooling by plane, bias gradients by column, the
// cross-entropy by row; ops/parallel.h) give the same bits on 1 and on 3 threads,
// forward and backward, on tensors large enough to be split.
#include <kiln/cpu_threads.h>

#include <gtest/gtest.h>

#include "nn/gradient_checker.h"
#include "ops/activation.h"
#include "ops/gemm.h"
#include "ops/loss.h"
#include "ops/optim.h"
#include "ops/pool.h"

namespace kiln::ops {
namespace {

struct Outputs {
  std::vector<float> relu, relu_grad, max, max_grad, avg, avg_grad, global, global_grad;
  std::vector<float> max2, max2_grad;  // 2x2 stride 2: its own loop in pool.cpp
  std::vector<std::int32_t> argmax, argmax2;
  std::vector<float> adamw_value, adamw_m, adamw_v, sgd_value, sgd_buffer;
  std::vector<float> column_sums;  // a linear layer's bias gradient
  std::vector<float> dlogits, loss_and_hits;
  std::vector<std::vector<float>> multi;  // multi-tensor AdamW and SGD, values and states
  bool operator==(const Outputs&) const = default;
};

// sum_rows into fresh memory, then added to it.
void sum_rows_twice(const Tensor& dy, Tensor& sums) {
  sum_rows(dy, sums, false);
  sum_rows(dy, sums, true);
}

Outputs run_on(int threads) {
  set_cpu_threads(threads);
  const Pool2dGeometry g{.batch = 16,
                         .channels = 8,
                         .height = 28,
                         .width = 28,
                         .kernel = 3,
                         .stride = 2,
                         .padding = 1};
  const Tensor x = test::random_tensor(g.input_shape(), 3);  // 100,352 elements
  Outputs out;
  Tensor y = Tensor::empty(x.shape()), dx = Tensor::empty(x.shape());
  const Tensor dy = test::random_tensor(x.shape(), 4);
  elementwise_forward(Relu{}, x, y);
  elementwise_backward(Relu{}, x, dy, dx);
  out.relu = y.to_vector();
  out.relu_grad = dx.to_vector();

  Tensor pooled = Tensor::empty(g.output_shape()),
         argmax = Tensor::empty(g.output_shape(), DType::I32);
  const Tensor dpooled = test::random_tensor(g.output_shape(), 5);
  max_pool2d_forward(g, x, pooled, argmax);
  max_pool2d_backward(g, dpooled, argmax, dx);
  out.max = pooled.to_vector();
  out.max_grad = dx.to_vector();
  const auto* where = argmax.data<std::int32_t>();
  out.argmax.assign(where, where + argmax.numel());
  avg_pool2d_forward(g, x, pooled);
  avg_pool2d_backward(g, dpooled, dx);
  out.avg = pooled.to_vector();
  out.avg_grad = dx.to_vector();

  Pool2dGeometry two = g;
  two.kernel = two.stride = 2;
  two.padding = 0;
  Tensor pooled2 = Tensor::empty(two.output_shape()),
         argmax2 = Tensor::empty(two.output_shape(), DType::I32);
  max_pool2d_forward(two, x, pooled2, argmax2);
  max_pool2d_backward(two, test::random_tensor(two.output_shape(), 9), argmax2, dx);
  out.max2 = pooled2.to_vector();
  out.max2_grad = dx.to_vector();
  const auto* where2 = argmax2.data<std::int32_t>();
  out.argmax2.assign(where2, where2 + argmax2.numel());

  Tensor global = Tensor::empty({g.batch, g.channels});
  global_avg_pool_forward(x, global);
  global_avg_pool_backward(test::random_tensor(global.shape(), 6), dx);
  out.global = global.to_vector();
  out.global_grad = dx.to_vector();

  // 300 columns over 3 threads, added to what is there.
  Tensor sums = test::random_tensor({300}, 10);
  sum_rows_twice(test::random_tensor({128, 300}, 11), sums);
  out.column_sums = sums.to_vector();

  // 256 rows of 10 logits, with label smoothing.
  const Tensor logits = test::random_tensor({256, 10}, 12);
  Tensor labels = Tensor::empty({256}, DType::I32), dlogits = Tensor::empty({256, 10});
  for (std::int64_t i = 0; i < 256; ++i) labels.data<std::int32_t>()[i] = (i * 7) % 10;
  Tensor loss = Tensor::zeros({1}), hits = Tensor::zeros({1});
  softmax_cross_entropy(logits, labels, 0.1f, 1.0f / 256, dlogits, loss, hits);
  out.dlogits = dlogits.to_vector();
  out.loss_and_hits = {loss.to_vector()[0], hits.to_vector()[0]};

  // Two steps each (an odd element count: every thread's chunk has a scalar tail).
  Tensor value = test::random_tensor({100001}, 7), m = Tensor::zeros({100001}),
         v = Tensor::zeros({100001});
  const Tensor grad = test::random_tensor({100001}, 8);
  const AdamWScalars adamw{0.999f, 0.9f, 0.999f, 0.1f, 0.001f, 0.01f, 0.0316f, 1e-8f};
  for (int i = 0; i < 2; ++i) adamw_step(adamw, value, grad, m, v);
  out.adamw_value = value.to_vector();
  out.adamw_m = m.to_vector();
  out.adamw_v = v.to_vector();
  Tensor buffer = Tensor::zeros({100001});
  const SgdScalars sgd{.lr = 0.1f,
                       .weight_decay = 0.01f,
                       .buffer_momentum = 0.9f,
                       .nesterov_momentum = 0.9f,
                       .momentum = true,
                       .nesterov = true};
  for (int i = 0; i < 2; ++i) sgd_step(sgd, value, grad, buffer);
  out.sgd_value = value.to_vector();
  out.sgd_buffer = buffer.to_vector();

  // Multi-tensor steps: one range over tensors of 100,001, 37 and 50,000 elements,
  // so that the threads' chunks start and end inside tensors.
  for (const bool adam : {true, false}) {
    std::vector<Tensor> values, grads, states;
    std::vector<ParameterUpdate> updates;
    for (const std::int64_t size : {100001, 37, 50000}) {
      values.push_back(test::random_tensor({size}, 13 + size));
      grads.push_back(test::random_tensor({size}, 14 + size));
      states.push_back(Tensor::zeros({size}));
      states.push_back(Tensor::zeros({size}));
    }
    for (std::size_t i = 0; i < values.size(); ++i)
      updates.push_back({&values[i], &grads[i], {&states[2 * i], &states[2 * i + 1]}});
    for (int i = 0; i < 2; ++i) {
      if (adam)
        adamw_multi_step(adamw, updates);
      else
        sgd_multi_step(sgd, updates);
    }
    for (const Tensor& t : values) out.multi.push_back(t.to_vector());
    for (const Tensor& t : states) out.multi.push_back(t.to_vector());
  }
  set_cpu_threads(0);
  return out;
}

TEST(ThreadCount, ElementwisePoolingAndOptimizersGiveTheSameBitsOnOneAndThreeThreads) {
  const Outputs one = run_on(1), three = run_on(3);
  EXPECT_EQ(one.relu, three.relu);
  EXPECT_EQ(one.relu_grad, three.relu_grad);
  EXPECT_EQ(one.max, three.max);
  EXPECT_EQ(one.argmax, three.argmax);
  EXPECT_EQ(one.max_grad, three.max_grad);
  EXPECT_EQ(one.max2, three.max2);
  EXPECT_EQ(one.argmax2, three.argmax2);
  EXPECT_EQ(one.max2_grad, three.max2_grad);
  EXPECT_EQ(one.avg, three.avg);
  EXPECT_EQ(one.avg_grad, three.avg_grad);
  EXPECT_EQ(one.global, three.global);
  EXPECT_EQ(one.global_grad, three.global_grad);
  EXPECT_EQ(one.adamw_value, three.adamw_value);
  EXPECT_EQ(one.adamw_m, three.adamw_m);
  EXPECT_EQ(one.adamw_v, three.adamw_v);
  EXPECT_EQ(one.sgd_value, three.sgd_value);
  EXPECT_EQ(one.sgd_buffer, three.sgd_buffer);
  EXPECT_EQ(one.column_sums, three.column_sums);
  EXPECT_EQ(one.dlogits, three.dlogits);
  EXPECT_EQ(one.loss_and_hits, three.loss_and_hits);
  EXPECT_EQ(one.multi, three.multi);
}

}  // namespace
}  // namespace kiln::ops
