import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-OVIBWNXK.js";import"./chunk-LRIGESEP.js";import"./chunk-WO47TEWM.js";import"./chunk-NXMAM54O.js";import"./chunk-JUNKEJ2C.js";import"./chunk-UZMZCFOP.js";export{a as KubeApiError,d as KubeClient,c as kubeconfigSecrets,b as loadKubeConfig};
