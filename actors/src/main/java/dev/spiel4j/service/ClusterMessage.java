package dev.spiel4j.service;

/**
 * A message that crosses between the nodes of a spiel4j cluster: serialized as Protobuf
 * ({@code spiel4j/v1/cluster.proto}) by {@link ClusterSerializer}, bound to this interface in {@code reference.conf}.
 */
interface ClusterMessage {
}
