// Runs one Flink SQL script (DDL, views, SET options, exactly one INSERT) in an embedded
// MiniCluster and prints how long it took.
//
//   java -cp "lib/*:classes" Runner --sql FILE --mode streaming|batch --parallelism P
//        [--var NAME=VALUE]...
//
// `${NAME}` in the script is replaced by the value of `--var NAME=VALUE` before it is split
// into statements; an unreplaced `${...}` is an error, so a forgotten variable never reaches the
// planner as a path. Statements end with `;` outside single-quoted strings; `--` comments run to
// the end of the line. `SET 'key' = 'value'` statements set table configuration options;
// everything else goes to `executeSql`, and the INSERT's job is awaited.
//
// The last line printed is machine-readable:
//   RUNNER setup_s=.. job_s=.. job_cpu_s=.. total_cpu_s=..
// setup_s: JVM start to just before the INSERT is submitted (planning of DDL only);
// job_s / job_cpu_s: from submitting the INSERT (planning, MiniCluster start, the job, cluster
// shutdown is not included) to the job's end, wall and process CPU (all threads, user + sys);
// total_cpu_s: process CPU from JVM start to the job's end.

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

public final class Runner {
    private static final Pattern VAR = Pattern.compile("\\$\\{([A-Za-z0-9_]+)\\}");
    private static final Pattern SET =
            Pattern.compile("(?is)^SET\\s+'([^']+)'\\s*=\\s*'([^']*)'$");

    public static void main(String[] args) throws Exception {
        long jvmStartMs = ManagementFactory.getRuntimeMXBean().getStartTime();
        String sqlPath = null;
        String mode = "streaming";
        int parallelism = 1;
        Map<String, String> vars = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            if (v == null) usage("missing value after " + a);
            switch (a) {
                case "--sql": sqlPath = v; break;
                case "--mode": mode = v; break;
                case "--parallelism": parallelism = Integer.parseInt(v); break;
                case "--var": {
                    int eq = v.indexOf('=');
                    if (eq <= 0) usage("--var wants NAME=VALUE, got " + v);
                    vars.put(v.substring(0, eq), v.substring(eq + 1));
                    break;
                }
                default: usage("unknown argument " + a);
            }
            i++;
        }
        if (sqlPath == null) usage("--sql is required");
        if (!mode.equals("streaming") && !mode.equals("batch")) usage("bad --mode " + mode);
        if (parallelism < 1) usage("--parallelism must be >= 1");

        String script = substitute(Files.readString(Path.of(sqlPath), StandardCharsets.UTF_8), vars);
        List<String> statements = split(script);

        Configuration conf = new Configuration();
        conf.setString("parallelism.default", Integer.toString(parallelism));
        EnvironmentSettings.Builder settings = EnvironmentSettings.newInstance().withConfiguration(conf);
        settings = mode.equals("batch") ? settings.inBatchMode() : settings.inStreamingMode();
        TableEnvironment tEnv = TableEnvironment.create(settings.build());

        int inserts = 0;
        double setupS = 0, jobS = 0, jobCpuS = 0;
        for (String stmt : statements) {
            Matcher set = SET.matcher(stmt);
            if (set.matches()) {
                tEnv.getConfig().getConfiguration().setString(set.group(1), set.group(2));
                continue;
            }
            boolean insert = stmt.regionMatches(true, 0, "INSERT", 0, 6);
            if (!insert) {
                tEnv.executeSql(stmt);
                continue;
            }
            inserts++;
            if (inserts > 1) throw new IllegalArgumentException("more than one INSERT in " + sqlPath);
            long t0 = System.nanoTime();
            double cpu0 = processCpuS();
            setupS = (System.currentTimeMillis() - jvmStartMs) / 1e3;
            TableResult result = tEnv.executeSql(stmt);
            result.await();
            jobS = (System.nanoTime() - t0) / 1e9;
            jobCpuS = processCpuS() - cpu0;
        }
        if (inserts != 1) throw new IllegalArgumentException("no INSERT statement in " + sqlPath);
        System.out.printf("RUNNER setup_s=%.3f job_s=%.3f job_cpu_s=%.3f total_cpu_s=%.3f%n",
                setupS, jobS, jobCpuS, processCpuS());
        // The MiniCluster's non-daemon threads would keep the JVM alive for a while.
        System.exit(0);
    }

    private static double processCpuS() {
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        return os.getProcessCpuTime() / 1e9;
    }

    private static String substitute(String script, Map<String, String> vars) {
        Matcher m = VAR.matcher(script);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String value = vars.get(m.group(1));
            if (value == null) throw new IllegalArgumentException("no --var for ${" + m.group(1) + "}");
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }

    /** Splits on `;` outside single quotes and backticks, dropping `--` comments. */
    static List<String> split(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean quote = false, tick = false;
        for (int i = 0; i < script.length(); i++) {
            char c = script.charAt(i);
            if (!quote && !tick && c == '-' && i + 1 < script.length() && script.charAt(i + 1) == '-') {
                while (i < script.length() && script.charAt(i) != '\n') i++;
                cur.append('\n');
                continue;
            }
            if (c == '\'' && !tick) quote = !quote;
            if (c == '`' && !quote) tick = !tick;
            if (c == ';' && !quote && !tick) {
                addIfNotBlank(out, cur);
                cur.setLength(0);
                continue;
            }
            cur.append(c);
        }
        if (quote || tick) throw new IllegalArgumentException("unterminated quote in SQL script");
        addIfNotBlank(out, cur);
        return out;
    }

    private static void addIfNotBlank(List<String> out, StringBuilder stmt) {
        String s = stmt.toString().strip();
        if (!s.isEmpty()) out.add(s);
    }

    private static void usage(String why) {
        System.err.println("Runner: " + why);
        System.err.println("usage: Runner --sql FILE [--mode streaming|batch] [--parallelism P] [--var NAME=VALUE]...");
        System.exit(2);
    }
}
