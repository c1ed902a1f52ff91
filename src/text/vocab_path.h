// Where the World vocabulary is found when the caller names no file.
#pragma once

#include <string>

namespace rwkv {

constexpr const char* kVocabFileName = "rwkv_vocab_v20230424.txt";

// $RWKV_VOCAB if set; else the first existing of <exe dir>/../share/rwkv/, <exe dir>/share/rwkv/ (a build tree or
// an install) and <install prefix>/share/rwkv/. Throws rwkv::Error(IO_ERROR) listing the places tried.
std::string find_vocab();

}  // namespace rwkv
