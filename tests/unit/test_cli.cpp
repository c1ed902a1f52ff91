// rwkv-cli end to end: exit codes and one clear message for bad input, and the .npy it writes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "testutil/testutil.h"

namespace {

struct CliRun {
    int code;
    std::string output;  // stdout and stderr
};

CliRun run_cli(const std::string& args) {
    std::string cmd = std::string(RWKV_BIN_DIR) + "/rwkv-cli " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {-1, "popen failed"};
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int status = pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

const std::string kModel = rwkv::test::fixture("tiny-bf16.pth");

TEST(Cli, InfoPrintsTheShape) {
    CliRun r = run_cli("info -m " + kModel + " --json");
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "\"n_layer\": 2")) << r.output;
    EXPECT_TRUE(contains(r.output, "\"dtype\": \"bf16\"")) << r.output;
}

TEST(Cli, LogitsWritesAnNpyThatMatchesTheGolden) {
    const std::string out = rwkv::test::temp_path("logits.npy");
    CliRun r = run_cli("logits -m " + kModel + " --tokens 1,2,3 --mode rnn --out " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    rwkv::test::NpyArray a = rwkv::test::read_npy(out);
    ASSERT_EQ(a.shape, (std::vector<int64_t>{3, 256}));
    const std::string out2 = rwkv::test::temp_path("logits2.npy");
    ASSERT_EQ(run_cli("logits -m " + kModel + " --tokens 1,2,3 --out " + out2).code, 0);
    EXPECT_EQ(rwkv::test::read_npy(out2).data, a.data);  // seq and rnn modes agree bitwise
}

TEST(Cli, BadInputsGiveOneClearMessageAndNonZeroExit) {
    const std::string dir = rwkv::test::temp_dir();
    rwkv::test::write_file(dir + "/empty.pth", {});
    std::vector<uint8_t> model = rwkv::test::read_file(kModel);
    rwkv::test::write_file(dir + "/truncated.pth", std::vector<uint8_t>(model.begin(), model.begin() + 5000));
    rwkv::test::write_file(dir + "/other.state", {'R', 'W', 'K', 'V', 'S', 'T', 'A', 'T', 1, 0, 0, 0, 7});
    const std::string out = " --out " + dir + "/x.npy";
    struct Case {
        std::string args, phrase;
    };
    std::vector<Case> cases = {
        {"info -m " + dir + "/missing.pth", "missing.pth: cannot open"},
        {"info -m " + dir + "/empty.pth", "empty.pth"},
        {"info -m " + dir + "/truncated.pth", "truncated.pth"},
        {"logits -m " + kModel + " --tokens 1,256" + out, "token id 256 at position 1 is out of range"},
        {"logits -m " + kModel + " --tokens 1,x" + out, "'x' is not a token id"},
        {"logits -m " + kModel + " --tokens 1 --state " + dir + "/other.state" + out, "other.state"},
    };
    for (const Case& c : cases) {
        CliRun r = run_cli(c.args);
        EXPECT_NE(r.code, 0) << c.args;
        EXPECT_NE(r.code, 2) << c.args << " is not a usage error";
        EXPECT_TRUE(contains(r.output, c.phrase)) << c.args << "\n" << r.output;
        EXPECT_FALSE(contains(r.output, "terminate called")) << r.output;
    }
}

TEST(Cli, UsageErrorsExitWithTwo) {
    for (const std::string& args : {std::string("info --bogus"), std::string("info"), std::string("frobnicate"),
                                    "logits -m " + kModel + " --tokens 1 --out x.npy --mode fast",
                                    "logits -m " + kModel + " --tokens 1 --out x.npy -t -3"}) {
        CliRun r = run_cli(args);
        EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    }
}

}  // namespace
