#include "ops/dispatch.h"

#include <fmt/format.h>

namespace kiln::ops {

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Device device = (*tensors.begin())->device();
  for (const Tensor* tensor : tensors)
    if (tensor->device() != device)
      throw InternalError(fmt::format("{}: tensors on {} and {}", op, device.str(),
                                      tensor->device().str()));
}

void check_shape(const char* op, const char* what, const Tensor& tensor, const Shape& shape) {
  if (tensor.shape() != shape)
    throw InternalError(fmt::format("{}: {} has shape {}, expected {}", op, what,
                                    shape_string(tensor.shape()), shape_string(shape)));
}

}  // namespace kiln::ops
