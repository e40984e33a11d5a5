"""One libFuzzer target per parser, and its replay as a unit test."""

def snaphaven_fuzzer(name, deps):
    """`name`.cc defines LLVMFuzzerTestOneInput. Makes two targets:

    name: the libFuzzer binary. Built only with --config=fuzz (clang; tools/fuzz
      runs it), hence "manual": `bazel build //...` with gcc skips it.
    name_replay_test: the same code with replay_main.cc instead of libFuzzer,
      fed the target's seeds (seeds.txt) and regression inputs
      (testdata/fuzz_regressions/<name>/), in every configuration.
    """
    native.cc_binary(
        name = name,
        srcs = [name + ".cc"],
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual", "fuzz"],
        deps = deps,
    )
    native.cc_test(
        name = name + "_replay_test",
        size = "small",
        srcs = [name + ".cc"],
        args = [name, "$(location :seeds.txt)"],
        data = [
            ":seeds.txt",
            "//:README.md",
            "//:testdata",
        ],
        deps = deps + [":replay_main"],
    )
