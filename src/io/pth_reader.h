// torch.save checkpoints (.pth): a STORED zip (zip_reader.h) holding a pickled state dict (pickle.h) and one
// entry per storage. Contiguous tensors are views into the mapped file; strided views are copied.
#pragma once

#include "io/checkpoint.h"

namespace rwkv {

// Fills `ckpt` (opened on a .pth) with its tensors, in state-dict order. Throws rwkv::Error(FORMAT_ERROR) with
// "<path>: ..." when the archive, the pickle or a tensor's storage range is malformed.
void read_pth(Checkpoint& ckpt);

}  // namespace rwkv
