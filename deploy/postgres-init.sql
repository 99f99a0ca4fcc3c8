-- One database per service (each service runs its own migrations at start-up).
CREATE DATABASE eropaf_intake;
CREATE DATABASE eropaf_matching;
CREATE DATABASE eropaf_scheduling;
CREATE DATABASE eropaf_notification;
