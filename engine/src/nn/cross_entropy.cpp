#include <kiln/error.h>
#include <kiln/nn/mlp.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace kiln::nn {
namespace {

void check_labels(const std::int32_t* labels, std::int64_t batch, std::int64_t classes) {
  for (std::int64_t row = 0; row < batch; ++row)
    if (labels[row] < 0 || labels[row] >= classes)
      throw DataError("label " + std::to_string(labels[row]) + " at batch row " +
                      std::to_string(row) + " is outside [0, " + std::to_string(classes) + ")");
}

}  // namespace

double softmax_cross_entropy(const float* logits, const std::int32_t* labels, std::int64_t batch,
                             std::int64_t classes, float* dlogits, double label_smoothing) {
  if (batch < 0 || classes < 1)
    throw InternalError("softmax_cross_entropy: batch " + std::to_string(batch) + ", classes " +
                        std::to_string(classes));
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw ConfigError("label smoothing must lie in [0, 1], got " + std::to_string(label_smoothing));
  check_labels(labels, batch, classes);
  if (batch == 0) return 0.0;

  // Target: off_target on every class plus (1 - smoothing) on the label.
  const double off_target = label_smoothing / static_cast<double>(classes);
  const double on_target = 1.0 - label_smoothing + off_target;
  const double inv_batch = 1.0 / static_cast<double>(batch);
  double total = 0.0;
  for (std::int64_t row = 0; row < batch; ++row) {
    const float* z = logits + row * classes;
    // log-sum-exp around the row maximum: no exp overflows, the largest term is 1.
    const double max = *std::max_element(z, z + classes);
    double sum = 0.0;
    for (std::int64_t k = 0; k < classes; ++k) sum += std::exp(z[k] - max);
    const double log_sum = std::log(sum);
    // -log softmax_k = max - z_k + log_sum, weighted by the target.
    double row_loss = 0.0;
    for (std::int64_t k = 0; k < classes; ++k) row_loss += max - z[k] + log_sum;
    row_loss *= off_target;
    row_loss += (on_target - off_target) * (max - z[labels[row]] + log_sum);
    total += row_loss;
    if (dlogits != nullptr) {
      float* dz = dlogits + row * classes;
      for (std::int64_t k = 0; k < classes; ++k) {
        const double target = k == labels[row] ? on_target : off_target;
        dz[k] = static_cast<float>((std::exp(z[k] - max) / sum - target) * inv_batch);
      }
    }
  }
  return total * inv_batch;
}

}  // namespace kiln::nn
