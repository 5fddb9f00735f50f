// Hostile model files beyond tests/model/gguf_malformed_test.cpp: what the reader meets on disk
// (an empty file, a folder, a file that shrinks under its mapping) and a few counts chosen so
// that a careless size computation wraps around 2^64.
#include <apr/backend.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <system_error>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolation/mapped_file_guard.hpp"
#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"
#include "model/model.hpp"
#include "support/models.hpp"
#include "support/process.hpp"
#include "support/testdata.hpp"

namespace fs = std::filesystem;
using namespace apr;

namespace {

std::vector<uint8_t> sample_file(uint64_t big_tensor_floats = 64) {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_float_array("x.doubles", GgufType::FLOAT64, std::vector<double>{1.0, 2.0});
    w.add_int_array("x.u64s", GgufType::UINT64, std::vector<int64_t>{1, 2, 3});
    w.add_tensor_f32("small", APR_TYPE_F32, {8}, std::vector<float>(8, 1.0f));
    w.add_tensor_f32("big", APR_TYPE_F32, {big_tensor_floats}, std::vector<float>(big_tensor_floats, 2.0f));
    return w.to_bytes();
}

template <typename T>
std::vector<uint8_t> patched(std::vector<uint8_t> b, size_t at, T value) {
    std::memcpy(b.data() + at, &value, sizeof(T));
    return b;
}

fs::path write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    out.close();
    REQUIRE(out);
    return path;
}

std::string gguf_error_of(const std::vector<uint8_t>& bytes) {
    try {
        GgufFile::from_memory(bytes, "hostile.gguf");
    } catch (const GgufError& e) {
        return e.what();
    }
    return "(accepted)";
}

// The offset of an array value's element count: after the key, the ARRAY type id and the
// element type id.
size_t array_count_at(const std::vector<uint8_t>& bytes, const std::string& key) {
    auto file = GgufFile::from_memory(bytes);
    return size_t(file->find(key)->offset) + 4;
}

}  // namespace

TEST_CASE("hostile file: a 0-byte model file on disk is a clear error", "[reliability][hostile]") {
    const fs::path dir = test::scratch_dir("hostile_empty");
    const fs::path empty = write_file(dir / "empty.gguf", {});
    try {
        GgufFile::open(empty.string());
        FAIL("an empty file was accepted");
    } catch (const GgufError& e) {
        CHECK_THAT(e.what(), Catch::Contains("empty.gguf") && Catch::Contains("0 bytes is too short"));
    }
    // Through apr-run: an error naming the file, no crash.
    auto r = test::run_process({(test::bin_dir() / "apr-run").string(), "-m", empty.string(), "-p", "x", "-n", "1"});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("empty.gguf") && Catch::Contains("too short"));
}

TEST_CASE("hostile file: a folder given as the model file is a clear error", "[reliability][hostile]") {
    const fs::path dir = test::scratch_dir("hostile_folder");
    fs::create_directories(dir / "model.gguf");
    try {
        GgufFile::open((dir / "model.gguf").string());
        FAIL("a folder was accepted as a model file");
    } catch (const std::system_error& e) {
        CHECK_THAT(e.what(), Catch::Contains("model.gguf is not a regular file"));
    }
    auto r = test::run_process(
        {(test::bin_dir() / "apr-run").string(), "-m", (dir / "model.gguf").string(), "-p", "x", "-n", "1"});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("not a regular file"));
}

TEST_CASE("hostile file: 8-byte element arrays whose byte size wraps 2^64 are rejected", "[reliability][hostile]") {
    const auto good = sample_file();
    // 2^61 and 2^62 elements of 8 bytes are 2^64 and 2^65 bytes: a multiplication that wraps
    // would see 0 bytes and accept the count; 2^60 of them is merely too big for the file.
    for (const char* key : {"x.doubles", "x.u64s"}) {
        const size_t at = array_count_at(good, key);
        for (uint64_t n : {uint64_t(1) << 60, uint64_t(1) << 61, uint64_t(1) << 62, ~uint64_t(0)}) {
            std::string err = gguf_error_of(patched(good, at, n));
            INFO(key << " with " << n << " elements: " << err);
            CHECK_THAT(err, Catch::Contains(key) && Catch::Contains("cannot fit"));
        }
    }
}

TEST_CASE("hostile file: tensor dimensions whose product overflows only at the last one", "[reliability][hostile]") {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_tensor_f32("t", APR_TYPE_F32, {2, 2, 2, 2}, std::vector<float>(16, 1.0f));
    const auto good = w.to_bytes();
    auto file = GgufFile::from_memory(good);
    const size_t ne_at = size_t(file->tensors()[0].info_offset) + 8 + 1 + 4;
    // 2^16 * 2^16 * 2^16 fits; times 2^16 is exactly 2^64: wraps to 0.
    auto bad = good;
    for (int d = 0; d < 4; ++d) bad = patched(bad, ne_at + 8 * size_t(d), uint64_t(1) << 16);
    CHECK_THAT(gguf_error_of(bad), Catch::Contains("tensor_infos[0].ne[3]") && Catch::Contains("overflows"));
    // Elements that fit in 2^64 but whose byte size (4 bytes each) does not.
    bad = patched(good, ne_at, uint64_t(1) << 62);
    for (int d = 1; d < 4; ++d) bad = patched(bad, ne_at + 8 * size_t(d), uint64_t(1));
    CHECK_THAT(gguf_error_of(bad), Catch::Contains("tensor_infos[0]") && Catch::Contains("overflows"));
}

TEST_CASE("hostile file: a tensor offset that wraps around onto the header is rejected", "[reliability][hostile]") {
    const auto good = sample_file();
    auto file = GgufFile::from_memory(good);
    const auto& t = file->tensors()[1];
    const size_t offset_at = size_t(t.info_offset) + 8 + t.name.size() + 4 + 8 * t.ne.size() + 4;
    REQUIRE(file->data_offset() % file->alignment() == 0);
    // base + data_offset + (2^64 - data_offset) would be the file's first byte: its magic.
    const uint64_t onto_magic = uint64_t(0) - file->data_offset();
    std::string err = gguf_error_of(patched(good, offset_at, onto_magic));
    INFO(err);
    CHECK_THAT(err, Catch::Contains("tensor_infos[1].offset") && Catch::Contains("run past the end"));
    // And every accepted tensor lies inside the data section.
    for (const auto& ti : file->tensors()) {
        CHECK(ti.data >= file->bytes().data() + file->data_offset());
        CHECK(ti.data + ti.n_bytes <= file->bytes().data() + file->bytes().size());
    }
}

TEST_CASE("hostile file: a model file that shrinks while mapped is an error, not a bus error",
          "[reliability][hostile]") {
    const fs::path dir = test::scratch_dir("hostile_shrink");
    const fs::path path = write_file(dir / "shrinks.gguf", sample_file(1 << 16));  // 256 KiB of tensor data
    int err_pipe[2];
    REQUIRE(::pipe(err_pipe) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child: map, guard, truncate under the mapping, touch the lost part.
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::close(err_pipe[0]);
        auto file = GgufFile::open(path.string());
        guard_mapped_file(file->bytes(), path.string());
        if (::truncate(path.c_str(), 4096) != 0) ::_exit(90);
        const auto& big = file->tensors()[1];
        volatile uint8_t last = big.data[big.n_bytes - 1];
        (void)last;
        ::_exit(91);  // not reached: the touch faults
    }
    ::close(err_pipe[1]);
    std::string err;
    char buf[512];
    for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) err.append(buf, size_t(n));
    ::close(err_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO(err);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    CHECK_THAT(err, Catch::Contains("model file " + path.string() + " shrank while in use (bus error at byte ") &&
                        Catch::Contains("it must not be modified while apr runs"));
}
