/**
 * The training service: Pekko typed actors around the engine, one actor system per run
 * ({@link dev.spiel4j.service.TrainingService#run}).
 *
 * <pre>
 *                         +------- RunSupervisor (guardian, or the cluster's singleton; owns broker, producer, run dir) --+
 *                         |                                                                                          |
 *  data.train file  --->  DataStreamer --NextBatch/Served--> TrainerActor (trainer-dispatcher: 1 thread, all tensors)
 *  &lt;prefix&gt;input topic -/   |  (TrainingDataStream,           |   |  ^  Decide (ActorContext.ask at a reselection)
 *                           |   ResetTo(position))            |   |  +--------------------- Selector (DropGrowSelector)
 *                           |                                 |   +-- Evaluate(step, MethodState copy) --> Evaluator
 *                           v                                 v                                           |
 *                        Publisher (blocking-IO dispatcher) &lt;-- metrics, events, checkpoints ------------+ eval events
 *                           |
 *                           +--> &lt;prefix&gt;metrics (Metrics)      &lt;prefix&gt;events (RunEvent: status, selection,
 *                           +--> &lt;prefix&gt;dead-letters           eval, checkpoint, outage)
 *                           +--> &lt;prefix&gt;checkpoints (compacted: chunks + manifest with the data position)
 *  run dir: &lt;run.dir&gt;/&lt;run.id&gt;/checkpoints/step-NNNNNN/{delta.sft, state.bin}   (+ kafka/ for the embedded broker)
 * </pre>
 *
 * <p>Resume: a (re)started {@link dev.spiel4j.service.TrainerActor} loads the newest checkpoint of the run
 * directory ({@link dev.spiel4j.service.CheckpointStore}: method state, step, data position), refuses one trained on
 * another base model, and sends {@link dev.spiel4j.service.DataStreamer.ResetTo} with the stored position (file
 * pass and record, or Kafka partition offsets: never committed to Kafka). The supervisor restarts a failed
 * trainer with backoff, a bounded number of times without progress (a newer checkpoint), then ends the run
 * FAILED; shutdown (SIGTERM through Pekko's coordinated shutdown, or
 * {@link dev.spiel4j.service.TrainingService.Run#stop}) makes the trainer write a final checkpoint first.
 *
 * <p>Scale-out ({@code cluster.workers > 0}): the run's actor system is the coordinator node of a Pekko Cluster
 * ({@link dev.spiel4j.service.ClusterNodes}, each node guarded by a {@link dev.spiel4j.service.ClusterNode}); the
 * run's supervisor is the cluster's singleton, which a standby worker's node takes over (resuming from the last
 * checkpoint) when the coordinator's node is lost. The trainer hands each step's micro-batches to the
 * {@link dev.spiel4j.service.GradientWorker}s the receptionist lists ({@link dev.spiel4j.service.StepExchange}),
 * sums their gradients in micro-batch order, applies the sum and sends it, and the selector's decisions, to every
 * worker. Messages between nodes are {@link dev.spiel4j.service.ClusterMessage}s, Protobuf on the wire
 * ({@link dev.spiel4j.service.ClusterSerializer}).
 */
package dev.spiel4j.service;
