#include <kiln/data/array.h>

#include <functional>
#include <numeric>

namespace kiln::data {

std::int64_t Array::elements() const {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::int64_t Array::row_elements() const {
  if (shape.empty()) return 1;
  return std::accumulate(shape.begin() + 1, shape.end(), std::int64_t{1}, std::multiplies<>());
}

}  // namespace kiln::data
