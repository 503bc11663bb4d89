// Private: the oneDNN CPU engine and stream kiln's CPU ops share, and helpers to
// move data between kiln's plain C-order tensors and the blocked layouts oneDNN
// picks for its fastest kernels.
#pragma once

#include <kiln/tensor/tensor.h>
#include <oneapi/dnnl/dnnl.hpp>

namespace kiln::ops::onednn {

dnnl::engine& engine();
dnnl::stream& stream();

// A memory object over a kiln tensor in the plain layout `tag`.
dnnl::memory wrap(const Tensor& tensor, const dnnl::memory::dims& dims,
                  dnnl::memory::format_tag tag);

// `user` itself when `wanted` matches its layout; else `scratch` (allocated on
// first use) after a reorder from `user` when `copy_in`.
dnnl::memory& as_layout(dnnl::memory& user, const dnnl::memory::desc& wanted,
                        dnnl::memory& scratch, bool copy_in);
// Copies `internal` back into `user` when they are different objects.
void copy_back(dnnl::memory& internal, dnnl::memory& user);

}  // namespace kiln::ops::onednn
