import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a}from"./chunk-2T6GJS2O.js";import"./chunk-NXMAM54O.js";import"./chunk-JUNKEJ2C.js";import"./chunk-UZMZCFOP.js";export{a as renderDeploySummary};
