package dev.spiel4j.service;

import dev.spiel4j.peft.sft.DropGrowSelector;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.peft.sft.SelectionRequest;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Makes SpIEL's drop/grow decisions for trainers: a {@link SelectionRequest} (one matrix's slots, |delta| and
 * candidate statistics) in, the pure {@link DropGrowSelector}'s {@link SelectionDecision} out. It keeps no state,
 * so one selector can serve many trainers. In-JVM the messages are the engine's records; a selector in another
 * process would carry the {@code spiel4j.v1} selection messages instead.
 */
final class Selector {
    private Selector() {
    }

    public sealed interface Command {
    }

    /** Decide one matrix's reselection. */
    public record Decide(SelectionRequest request, ActorRef<SelectionDecision> replyTo) implements Command {
    }

    public static Behavior<Command> create() {
        return Behaviors.receive(Command.class)
                .onMessage(Decide.class, d -> {
                    d.replyTo().tell(DropGrowSelector.decide(d.request()));
                    return Behaviors.same();
                })
                .build();
    }
}
