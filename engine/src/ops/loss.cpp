#include "ops/loss.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/parallel.h"

namespace kiln::ops {
namespace {

// Logits in a batch from which the cross-entropy splits its rows over the threads.
constexpr std::int64_t kParallelLogits = 1024;

}  // namespace

template <>
void SoftmaxCrossEntropy<DeviceType::CPU>::run(const Tensor& logits, const Tensor& labels,
                                               float smoothing, float grad_scale, Tensor& dlogits,
                                               Tensor& loss_sum, Tensor& correct) {
  const std::int64_t batch = logits.dim(0), classes = logits.dim(1);
  const float* z_all = logits.data<float>();
  const std::int32_t* y = labels.data<std::int32_t>();
  float* dz_all = dlogits.defined() ? dlogits.data<float>() : nullptr;
  const double off_target = smoothing / static_cast<double>(classes);
  const double on_target = 1.0 - smoothing + off_target;
  // Rows are independent: each one's loss and hit go to its own slot, split over
  // the CPU threads (two exponentials a logit: from a thousand logits on, that
  // outweighs waking them), and are summed in row order after, as before.
  std::vector<double> row_loss(static_cast<std::size_t>(batch));
  std::vector<std::uint8_t> row_hit(static_cast<std::size_t>(batch));
  parallel_chunks(
      batch, items_for(classes, kParallelLogits), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row) {
          const float* z = z_all + row * classes;
          // log-sum-exp around the row maximum: no exp overflows, the largest term is 1.
          const float* top = std::max_element(z, z + classes);
          const double max = *top;
          row_hit[static_cast<std::size_t>(row)] = (top - z) == y[row];
          double sum = 0.0, sum_z = 0.0;
          for (std::int64_t k = 0; k < classes; ++k) {
            sum += std::exp(z[k] - max);
            sum_z += z[k];
          }
          const double log_sum = max + std::log(sum);
          // -sum_k target_k log softmax_k with target off_target + (on - off) [k == y].
          row_loss[static_cast<std::size_t>(row)] =
              off_target * (static_cast<double>(classes) * log_sum - sum_z) +
              (on_target - off_target) * (log_sum - z[y[row]]);
          if (dz_all == nullptr) continue;
          float* dz = dz_all + row * classes;
          for (std::int64_t k = 0; k < classes; ++k) {
            const double target = k == y[row] ? on_target : off_target;
            dz[k] = static_cast<float>((std::exp(z[k] - log_sum) - target) * grad_scale);
          }
        }
      });
  double total = 0.0;
  std::int64_t hits = 0;
  for (std::int64_t row = 0; row < batch; ++row) {
    total += row_loss[static_cast<std::size_t>(row)];
    hits += row_hit[static_cast<std::size_t>(row)];
  }
  loss_sum.data<float>()[0] += static_cast<float>(total);
  correct.data<float>()[0] += static_cast<float>(hits);
}

template <>
void MeanSquaredError<DeviceType::CPU>::run(const Tensor& pred, const Tensor& target,
                                            float grad_scale, Tensor& dpred, Tensor& loss_sum) {
  const std::int64_t features = pred.numel() / pred.dim(0);
  const float *p = pred.data<float>(), *t = target.data<float>();
  float* dp = dpred.defined() ? dpred.data<float>() : nullptr;
  double total = 0.0;
  for (std::int64_t i = 0; i < pred.numel(); ++i) {
    const double difference = static_cast<double>(p[i]) - t[i];
    total += difference * difference;
    if (dp != nullptr)
      dp[i] = static_cast<float>(2.0 * difference / static_cast<double>(features) * grad_scale);
  }
  loss_sum.data<float>()[0] += static_cast<float>(total / static_cast<double>(features));
}

void check_labels(const Tensor& labels, std::int64_t classes) {
  const Tensor host = labels.device().is_cpu() ? labels : labels.to(Device::cpu());
  const std::int32_t* y = host.data<std::int32_t>();
  for (std::int64_t row = 0; row < host.numel(); ++row)
    if (y[row] < 0 || y[row] >= classes)
      throw DataError(
          fmt::format("label {} at batch row {} is outside [0, {}): the model has {} "
                      "outputs",
                      y[row], row, classes, classes));
}

void softmax_cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing,
                           float grad_scale, Tensor& dlogits, Tensor& loss_sum, Tensor& correct) {
  if (logits.rank() != 2 || labels.numel() != logits.dim(0))
    throw InternalError(fmt::format("softmax_cross_entropy: logits {} with {} labels",
                                    shape_string(logits.shape()), labels.numel()));
  if (!(smoothing >= 0.0f && smoothing < 1.0f))
    throw ConfigError(fmt::format("label smoothing must lie in [0, 1), got {}", smoothing));
  if (dlogits.defined()) check_shape("softmax_cross_entropy", "dlogits", dlogits, logits.shape());
  check_same_device("softmax_cross_entropy", {&logits, &labels, &loss_sum, &correct});
  dispatch<SoftmaxCrossEntropy>(logits.device(), "softmax_cross_entropy", [&](auto op) {
    op.run(logits, labels, smoothing, grad_scale, dlogits, loss_sum, correct);
  });
}

void mean_squared_error(const Tensor& pred, const Tensor& target, float grad_scale, Tensor& dpred,
                        Tensor& loss_sum) {
  check_shape("mean_squared_error", "target", target, pred.shape());
  if (dpred.defined()) check_shape("mean_squared_error", "dpred", dpred, pred.shape());
  check_same_device("mean_squared_error", {&pred, &target, &loss_sum});
  dispatch<MeanSquaredError>(pred.device(), "mean_squared_error",
                             [&](auto op) { op.run(pred, target, grad_scale, dpred, loss_sum); });
}

}  // namespace kiln::ops
