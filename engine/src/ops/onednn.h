// Private: the oneDNN CPU engine and stream kiln's CPU ops share, and the staging
// of kiln's plain C-order float32 tensors into the layouts and data types oneDNN
// picks for its fastest kernels (blocked layouts, bf16 copies).
#pragma once

#include <kiln/tensor/tensor.h>
#include <oneapi/dnnl/dnnl.hpp>

namespace kiln::ops::onednn {

dnnl::engine& engine();
dnnl::stream& stream();

// A memory object over a kiln tensor in the plain float32 layout `tag`.
dnnl::memory wrap(const Tensor& tensor, const dnnl::memory::dims& dims,
                  dnnl::memory::format_tag tag);

// One argument of a primitive as the primitive wants it: the tensor's own memory
// when layout and data type agree, else a buffer of the wanted kind, with the
// reorder between the two built on first use and kept. One Staged serves one
// argument of one primitive (so the same layouts every call), as an input or as
// an output, not both.
class Staged {
 public:
  // `user` itself, or the buffer after `user` was reordered into it.
  dnnl::memory& input(dnnl::memory& user, const dnnl::memory::desc& wanted);
  // `user` itself, or the buffer for the primitive to write; finish() then
  // reorders the buffer into `user`.
  dnnl::memory& output(dnnl::memory& user, const dnnl::memory::desc& wanted);
  void finish(dnnl::memory& user);

 private:
  dnnl::memory buffer_;
  dnnl::reorder reorder_;
  bool staged_output_ = false;
};

}  // namespace kiln::ops::onednn
