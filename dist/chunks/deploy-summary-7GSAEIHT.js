import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a}from"./chunk-WP6HHOOB.js";import"./chunk-66G7R2PH.js";import"./chunk-JUNKEJ2C.js";import"./chunk-UZMZCFOP.js";export{a as renderDeploySummary};
