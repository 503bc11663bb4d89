#include "classification_metrics.h"

namespace kiln::evaluate {

MetricsAccumulator::MetricsAccumulator(std::int64_t classes)
    : classes_(classes),
      confusion_(static_cast<std::size_t>(classes), std::vector<std::int64_t>(classes, 0)) {}

void MetricsAccumulator::add(std::int32_t label, std::int32_t predicted, double loss) {
  ++confusion_[static_cast<std::size_t>(label)][static_cast<std::size_t>(predicted)];
  loss_sum_ += loss;
  ++samples_;
}

ClassificationMetrics MetricsAccumulator::finish() const {
  ClassificationMetrics metrics;
  metrics.samples = samples_;
  metrics.confusion = confusion_;
  if (samples_ == 0) return metrics;
  std::int64_t correct = 0;
  double f1_sum = 0;
  std::int64_t f1_classes = 0;
  for (std::int64_t c = 0; c < classes_; ++c) {
    const auto k = static_cast<std::size_t>(c);
    const std::int64_t true_positive = confusion_[k][k];
    std::int64_t actual = 0, predicted = 0;
    for (std::int64_t other = 0; other < classes_; ++other) {
      actual += confusion_[k][static_cast<std::size_t>(other)];
      predicted += confusion_[static_cast<std::size_t>(other)][k];
    }
    correct += true_positive;
    if (actual + predicted == 0) continue;
    // F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (actual + predicted).
    f1_sum += 2.0 * static_cast<double>(true_positive) / static_cast<double>(actual + predicted);
    ++f1_classes;
  }
  metrics.accuracy = static_cast<double>(correct) / static_cast<double>(samples_);
  metrics.macro_f1 = f1_classes > 0 ? f1_sum / static_cast<double>(f1_classes) : 0.0;
  metrics.loss = loss_sum_ / static_cast<double>(samples_);
  return metrics;
}

nlohmann::json ClassificationMetrics::to_json() const {
  return {{"samples", samples},
          {"accuracy", accuracy},
          {"macro_f1", macro_f1},
          {"loss", loss},
          {"confusion", confusion}};
}

}  // namespace kiln::evaluate
