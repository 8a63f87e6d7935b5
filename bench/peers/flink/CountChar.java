// q14's user-defined function `count_char(s, c)`: how many bytes of `s` (UTF-8) equal the
// first byte of `c`; 0 when `s` is null. The Flink Nexmark project ships its own class for this;
// its jar is not in the wheel, so this file replaces it.

import java.nio.charset.StandardCharsets;

import org.apache.flink.table.functions.ScalarFunction;

public final class CountChar extends ScalarFunction {
    public long eval(String s, String c) {
        if (s == null || c == null || c.isEmpty()) return 0;
        byte target = c.getBytes(StandardCharsets.UTF_8)[0];
        long n = 0;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            if (b == target) n++;
        }
        return n;
    }
}
