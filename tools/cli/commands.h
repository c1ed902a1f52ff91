// The rwkv-cli subcommands. Each add_* registers its options on `root` and returns the function that runs it
// (returning the process exit code) once the command line is parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace cli {

using Runner = std::function<int()>;

Runner add_info(CLI::App& root);
Runner add_logits(CLI::App& root);
Runner add_convert(CLI::App& root);
Runner add_tokenize(CLI::App& root);
Runner add_detokenize(CLI::App& root);
Runner add_generate(CLI::App& root);
Runner add_chat(CLI::App& root);

}  // namespace cli
