/* A stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks: Rust's
 * standard library asks it for random bytes (ProcessPrng). It answers from
 * RtlGenRandom (SystemFunction036). Only the tests' Wine prefix gets it;
 * real Windows has its own, and the product never ships this. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
