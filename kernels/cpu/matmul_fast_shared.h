// What the AVX2 and AVX-512 matmul files share beyond their ISA: a growable scratch buffer and the schedule of the
// multi-token InOut product. Nothing here is compiled for a particular ISA; the callbacks are.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>

#include "common/thread_pool.h"

namespace rwkv::detail {

// A growable 64-byte-aligned scratch buffer (contents not kept when it grows).
class AlignedBuffer {
  public:
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { std::free(data_); }
    float* floats(int64_t n) {
        if (n > size_) {
            std::free(data_);
            size_ = (n + 15) / 16 * 16;
            data_ = static_cast<float*>(std::aligned_alloc(64, size_t(size_) * sizeof(float)));
            if (!data_) throw std::bad_alloc();
        }
        return data_;
    }

  private:
    float* data_ = nullptr;
    int64_t size_ = 0;
};

// The multi-token InOut product's work items (column block item / chunks × a chunk of tokens, column-block-major)
// spread over the threads. With `pack`, each thread packs a column block into its slab (`slab_floats` floats) once
// for all of its items of that block, `pack_block(block, slab)`, and runs them on it, `on_slab(item, slab)`;
// otherwise `in_place(item, block)` reads the matrix where it is.
template <typename InPlace, typename PackBlock, typename OnSlab>
void in_out_items(ThreadPool& pool, int64_t items, int64_t chunks, int64_t grain, bool pack, int64_t slab_floats,
                  const InPlace& in_place, const PackBlock& pack_block, const OnSlab& on_slab) {
    pool.parallel_for(items, grain, [&](int64_t b, int64_t e) {
        thread_local AlignedBuffer slab_buf;  // grows once per thread, then reused
        float* slab = pack ? slab_buf.floats(slab_floats) : nullptr;
        int64_t packed_block = -1;
        for (int64_t item = b; item < e; item++) {
            const int64_t block = item / chunks;
            if (!pack) {
                in_place(item, block);
                continue;
            }
            if (block != packed_block) pack_block(block, slab);
            packed_block = block;
            on_slab(item, slab);
        }
    });
}

}  // namespace rwkv::detail
