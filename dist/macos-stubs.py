#!/usr/bin/env python3
"""Writes text stubs (.tbd) of the macOS frameworks that zig does not carry.

usage: macos-stubs.py BUILD_DIR LIBSYSTEM_TBD SDKROOT

The objects under BUILD_DIR (rlibs and build-script archives) name the
symbols they need; those that neither they nor libSystem define are put in
stubs of libobjc and the frameworks in FRAMEWORKS under SDKROOT, by their
prefixes, so zig can link. A symbol no rule claims fails the script. A stub only names symbols: the real
frameworks on a Mac provide them.
"""
import glob
import os
import re
import subprocess
import sys

FRAMEWORKS_DIR = "System/Library/Frameworks"


def framework(name, pattern):
    """A framework's stub path, install name and the symbols it takes."""
    return (name, f"{FRAMEWORKS_DIR}/{name}.framework/{name}.tbd",
            f"/{FRAMEWORKS_DIR}/{name}.framework/Versions/A/{name}", pattern)


# First match wins, so the narrower rules come first. A framework that the
# link asks for but whose symbols come from elsewhere gets an empty stub.
FRAMEWORKS = [
    ("objc", "usr/lib/libobjc.tbd", "/usr/lib/libobjc.A.dylib",
     r"_(objc_|sel_|class_|object_|ivar_|method_|protocol_|property_|imp_|OBJC_)"),
    framework("CoreFoundation", r"_(CF|kCF|__kCF)"),
    framework("IOKit", r"_(IO|kIO|io_)"),
    framework("Security", r"_(Sec|kSec|SSL|kSSL|CMS|kCMS|Authorization|kAuthorization)"),
    framework("OpenGL", r"_(CGL|gl[A-Z])"),
    framework("CoreVideo", r"_(CV|kCV)"),
    framework("CoreGraphics", r"_(CG|kCG)"),
    framework("Carbon", r"_(TIS|kTIS|UCKeyTranslate|LMGetKbdType)"),
    framework("Foundation", r"_NS(KeyValue|Foundation|Log|DefaultRunLoopMode|RunLoopCommonModes"
              r"|StringFrom|SelectorFrom|ClassFrom|Localized|UnderlyingError)"),
    framework("AppKit", r"_NS"),
    framework("ApplicationServices", r"(?!)"),
]
ARCHES = "[ x86_64-macos, arm64-macos, arm64e-macos ]"


def symbols(path, *flags):
    out = subprocess.run(["llvm-nm", "-j", *flags, path], capture_output=True, text=True)
    return set(out.stdout.split())


def main():
    build, libsystem, sdk = sys.argv[1:4]
    objects = glob.glob(f"{build}/deps/*.rlib") + glob.glob(f"{build}/build/*/out/*.a")
    needed, defined = set(), set()
    for obj in objects:
        needed |= symbols(obj, "-u")
        defined |= symbols(obj, "--defined-only", "-g")
    with open(libsystem) as f:
        system = set(re.findall(r"[\s\[,'](_[A-Za-z0-9_$.]+)", f.read()))
    # The allocator shim is made by rustc when it links.
    missing = {s for s in needed - defined - system if "___rustc" not in s}
    for name, stub, install, pattern in FRAMEWORKS:
        mine = sorted(s for s in missing if re.match(pattern, s))
        missing -= set(mine)
        path = os.path.join(sdk, stub)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        listed = ", ".join(f"'{s}'" for s in mine) or f"'_{name}_stub'"
        with open(path, "w") as f:
            f.write(f"--- !tapi-tbd\ntbd-version: 4\ntargets: {ARCHES}\n"
                    f"install-name: '{install}'\ncurrent-version: 1\n"
                    f"exports:\n  - targets: {ARCHES}\n    symbols: [ {listed} ]\n...\n")
        print(f"{name}: {len(mine)} symbols", file=sys.stderr)
    if missing:
        print("macos-stubs: no framework for:", " ".join(sorted(missing)), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
