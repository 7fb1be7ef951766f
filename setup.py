"""Build knowledge for cdrop's compiled core (metadata lives in pyproject.toml).

* OpenMP is detected by compiling and linking a tiny OpenMP program with the compiler that will
  build the extension.  Without it cdrop builds anyway and runs serially (cdrop.show_config()
  then reports ``openmp: False``).
  CDROP_NO_OPENMP=1 forces the serial build; CDROP_FAIL_NO_OPENMP=1 turns a failed probe into an
  error (for CI and packagers who want to be sure).  Apple clang is probed with
  "-Xpreprocessor -fopenmp" and -lomp; libomp's -I and -L come from CPPFLAGS and LDFLAGS
  (e.g. CPPFLAGS="-I$(brew --prefix libomp)/include" LDFLAGS="-L$(brew --prefix libomp)/lib").
* Baseline ISA only: no -march=native (it writes the build machine's ISA into the binary, and a
  wheel or cached build then dies with SIGILL elsewhere) and no -ffast-math (it can switch the
  whole Python process to flush-to-zero).  The AVX2 and AVX-512 kernels are target("avx2") and
  target("avx512f,avx512bw") functions chosen at import time.
* CDROP_DEBUG=1 builds with Cython's bounds and wrap-around checks back on, and -O1 -g.
* CDROP_SANITIZE=address,undefined (any -fsanitize= list) builds with gcc/clang sanitizers,
  frame pointers and no recovery from UB (a report aborts).  The Python interpreter is not
  instrumented, so the runtime must be preloaded: see .ci/run, step 4.
"""
import glob
import os
import shlex
import sys
import tempfile
import textwrap

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:  # setuptools >= 59 vendors distutils' errors here
    from setuptools.errors import CompileError, LinkError
except ImportError:  # pragma: no cover
    from distutils.errors import CompileError, LinkError

DEBUG = os.environ.get("CDROP_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("CDROP_SANITIZE", "").strip()

# All Cython directives, in one place.  The kernels index with int64_t and never wrap around.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "freethreading_compatible": True,
}

OPENMP_PROBE = textwrap.dedent(
    """
    #ifndef _OPENMP
    #error "these flags do not enable OpenMP"
    #endif
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


def openmp_flags(compiler):
    """(compile_args, link_args) that enable OpenMP for `compiler`, or None."""
    if _env_flag("CDROP_NO_OPENMP"):
        print("cdrop: CDROP_NO_OPENMP is set: building without OpenMP (serial)")
        return None
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    else:
        # GCC and LLVM clang; then Apple clang, which has no -fopenmp driver flag but compiles
        # OpenMP through the preprocessor against libomp (its -I/-L come from CPPFLAGS/LDFLAGS).
        candidates = [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    # The probe is compiled and linked as an executable, for which distutils does not apply
    # the environment's flags as it does for the extension: pass them on explicitly.
    env_cflags = shlex.split(os.environ.get("CPPFLAGS", "")) + shlex.split(
        os.environ.get("CFLAGS", "")
    )
    env_ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        for cflags, lflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=env_cflags + cflags)
                compiler.link_executable(
                    objs, "probe", output_dir=tmp, extra_postargs=env_ldflags + lflags
                )
            except (CompileError, LinkError):
                continue
            print(f"cdrop: OpenMP enabled with {cflags + lflags}")
            return cflags, lflags
    msg = "cdrop: no working OpenMP found: building a serial cdrop (cdrop.show_config() says so)"
    if _env_flag("CDROP_FAIL_NO_OPENMP"):
        raise RuntimeError(msg + "; CDROP_FAIL_NO_OPENMP is set")
    print(msg, file=sys.stderr)
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        omp = openmp_flags(self.compiler)
        is_msvc = self.compiler.compiler_type == "msvc"
        if is_msvc:
            # /std:c11: _Static_assert and _Pragma; /fp:precise: no contraction into FMA, as
            # -ffp-contract=off below (untested: the project has no Windows machine; the C
            # builds without GCC's and Clang's extensions, see tests/test_review12.py)
            base = ["/O2", "/std:c11", "/fp:precise"]
            # isa_portable.c is written with GCC's and Clang's vector extensions, which MSVC
            # lacks: it compiles to nothing (cdrop/_src/platform.h) and "portable" runs the
            # scalar path, as cdrop.show_config()["simd"] then reports.
            print("cdrop: MSVC has no vector extensions: the portable SIMD path is not built, "
                  "the scalar path runs in its place")
        else:
            base = ["-O1", "-g"] if DEBUG else ["-O3"]
            # -ffp-contract=off: a * b + c stays two roundings (no FMA) on every instruction set,
            # which the dropout family's bits (alpha_dropout, gaussian_*) rely on: the AVX-512
            # file could otherwise fuse them, and the paths and NumPy would differ by an ulp.
            # -fno-math-errno: sqrtf then compiles to the instruction alone (no libm call to set
            # errno, which cdrop never reads), so that GCC can vectorise normal.h's transform;
            # the bits are the same (IEEE sqrt is correctly rounded either way).
            base += ["-fno-strict-aliasing", "-Wno-unknown-pragmas", "-ffp-contract=off",
                     "-fno-math-errno"]
        san = []
        if SANITIZE and not is_msvc:
            san = [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
        for ext in self.extensions:
            ext.extra_compile_args = base + san + (omp[0] if omp else [])
            ext.extra_link_args = san + (omp[1] if omp else [])
        # The build switches (CDROP_NO_OPENMP, CDROP_DEBUG, CDROP_SANITIZE) are not in any file
        # that setuptools compares, so a tree built before would be reused as "up to date":
        # always compile (a build takes seconds).
        self.force = True
        super().build_extensions()


# The C kernels are separate translation units (cdrop/_src/*.c, one per instruction set plus
# the table and the layout walks), reached through the kernel table; the headers and .inc.h
# templates they share are dependencies.  Paths are relative, as setuptools requires.
extensions = [
    Extension(
        "cdrop._kernels",
        sources=["cdrop/_kernels.pyx"] + sorted(glob.glob("cdrop/_src/*.c")),
        include_dirs=["cdrop/_src"],
        depends=sorted(glob.glob("cdrop/_src/*.h")),
    )
]

setup(
    ext_modules=cythonize(
        extensions, compiler_directives=DIRECTIVES, annotate=False, force=True
    ),  # force: CDROP_DEBUG changes the directives, which cythonize does not compare
    cmdclass={"build_ext": BuildExt},
)
