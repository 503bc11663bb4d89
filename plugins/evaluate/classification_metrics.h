// Accuracy, macro-F1 and the confusion matrix of a classifier's predictions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace kiln::evaluate {

struct ClassificationMetrics {
  std::int64_t samples = 0;
  double accuracy = 0;
  // Mean of the per-class F1 over classes that occur in the labels or the
  // predictions (a class absent from both has no F1 to average).
  double macro_f1 = 0;
  double loss = 0;                                   // mean softmax cross-entropy
  std::vector<std::vector<std::int64_t>> confusion;  // [true class][predicted class]

  nlohmann::json to_json() const;
};

class MetricsAccumulator {
 public:
  explicit MetricsAccumulator(std::int64_t classes);
  void add(std::int32_t label, std::int32_t predicted, double loss);
  ClassificationMetrics finish() const;

 private:
  std::int64_t classes_;
  std::int64_t samples_ = 0;
  double loss_sum_ = 0;
  std::vector<std::vector<std::int64_t>> confusion_;
};

}  // namespace kiln::evaluate
