export * from "./capture";
export * from "./challenge";
export * from "./client";
export * from "./guidance";
export * from "./http";
export * from "./i18n";
export * from "./token";
export * from "./proctoring";
